# talk.sh: a phase that asks the deploying machine for what it needs, and
# reads the answers on its standard input. Defines functions; with
# MF_TALK=1 it also starts the reader at once, and then must come after
# lock.sh: the EXIT trap stops the reader, then runs lock_exit.
#
# Two things travel that way, both in the phase's one SSH session:
#   - a slot to download from a service the whole fleet shares (the git
#     server, the package index): gate_take waits for one, gate_give
#     hands it back, so that at most so many hosts download at once;
#   - the release's commits (push): push_fetch names the commits the
#     repository in the working directory holds, and fetches the release
#     from the git bundle the deploying machine sends back: only what the
#     repository misses, so the host needs no git server at all.
#
# Standard input is read by one background reader, from the start to the
# end of the phase, so that no other command can take the answers; the
# phase itself reads /dev/null. A command run without input is watched by
# sshx, which stops it when the deploying machine goes; a command with
# input is not, so the reader does it: the end of its input, while the
# phase runs, means the deploying machine is gone (killed, or its
# connection lost), and the phase's process group gets TERM (its traps
# release the lock), then KILL 3 seconds later. At the phase's end the
# reader is stopped first: the deploying machine closes the input only
# once the phase has exited.
#
# Inputs (environment):
#   MF_TALK   1: start the reader; the answers come on standard input
#   MF_GATE   1: gate_take asks for a slot (else it takes none)
# Prints:
#   magefab:ask gate          gate_take: a slot, please; the answer is a
#                             line "go" (or "fail TEXT")
#   magefab:ungate            gate_give: the slot is free again
#   magefab:ask have COMMITS  push_fetch: a bundle of the release without
#                             what COMMITS (space-separated) hold; the
#                             answer is a line "bundle SIZE" followed by
#                             SIZE bytes (or "fail TEXT")
#   magefab:error TEXT        the deploying machine's "fail TEXT" (exit 1)
talk_dir='' talk_pid='' gated=''
if [ "${MF_TALK:-}" = 1 ]; then
  { talk_dir=$(mktemp -d) && mkfifo "$talk_dir/answer"; } || die "cannot make a temporary directory for the deploying machine's answers"
  # The script holds the answers' pipe open, for reading and writing, for
  # as long as it runs: each answer the reader writes waits there in order
  # until talk_ask reads it. Opened afresh for each answer instead, a read
  # could open it while the writer of the answer before was still closing
  # it, and see that close as an empty end.
  exec 4<>"$talk_dir/answer"
  talk_pg=$$
  exec 3<&0
  (
    while IFS= read -r t_line; do
      case $t_line in
        'bundle '*) head -c "${t_line#bundle }" > "$talk_dir/bundle" || break ;;
      esac
      printf '%s\n' "$t_line" > "$talk_dir/answer"
    done
    # shellcheck disable=SC2016 # $1 is the inner shell's
    setsid /bin/sh -c 'sleep 3; kill -KILL -"$1"' sh "$talk_pg" &
    kill -TERM -"$talk_pg"
  ) <&3 3<&- 4<&- >/dev/null 2>&1 &
  talk_pid=$!
  exec 3<&- </dev/null
  # talk_stop stops the reader and removes what it received.
  talk_stop() {
    if [ -n "$talk_pid" ]; then kill -KILL "$talk_pid" 2>/dev/null; talk_pid=; fi
    rm -rf "$talk_dir"
  }
  trap 'talk_stop; lock_exit' EXIT
fi

# talk_ask KIND [VALUE] prints "magefab:ask KIND VALUE" and waits for the
# answer: it sets answer, or dies with the deploying machine's failure.
talk_ask() {
  [ -n "$talk_dir" ] || die "the deploying machine is not answering this phase (MF_TALK is not 1)"
  res "ask	$1	${2:-}"
  answer=
  IFS= read -r answer <&4 || die "no answer from the deploying machine to $1"
  case $answer in 'fail '*) die "${answer#fail }" ;; esac
  return 0
}

# gate_take waits for a download slot when MF_GATE is 1; gate_give gives
# it back. A phase that ends holding one gives it back by ending.
gate_take() {
  [ "${MF_GATE:-}" = 1 ] || return 0
  talk_ask gate
  [ "$answer" = go ] || die "the deploying machine answered $answer to a request for a download slot"
  gated=1
}
gate_give() {
  [ -n "$gated" ] || return 0
  gated=
  res "ungate"
}

# push_fetch asks the deploying machine for the release, MF_TARGET_SHA,
# without the commits the repository in the working directory holds (its
# HEAD and its newest branches and tags), and fetches it from the bundle
# it sends: the release's commit as refs/magefab/release, and the tags
# that name it or precede it.
push_fetch() {
  p_haves=$({ git rev-parse -q --verify HEAD
    git for-each-ref --count=32 --sort=-committerdate --format='%(objectname) %(*objectname)' refs/magefab refs/remotes refs/heads refs/tags | awk '{ print $NF }'
  } 2>/dev/null | sort -u | tr '\n' ' ')
  talk_ask have "${p_haves% }"
  case $answer in 'bundle '*) ;; *) die "the deploying machine answered $answer to a request for the release" ;; esac
  git fetch -q --no-tags "$talk_dir/bundle" '+refs/magefab/release:refs/magefab/release' '+refs/tags/*:refs/tags/*' 2>&1 ||
    die "git fetch in $PWD from the bundle the deploying machine sent failed"
  rm -f "$talk_dir/bundle"
}
