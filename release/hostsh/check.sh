# check.sh: the checks of Fleet.Check on a host: what a deploy and a
# rollback need there, changing nothing. Each check prints one result,
# with what to fix when it is not ok.
# After: lock.sh inspect.sh talk.sh venv.sh
#
# Inputs (environment):
#   MF_SCM           the git URL the hosts clone from
#   MF_SCM_KIND      ssh (a host and its key), local (a path on the host)
#                    or other (https, git)
#   MF_SCM_HOST      for ssh, the name known_hosts holds the git server's
#                    key under: "host", or "[host]:port"
#   MF_GROUP         the group a created deploy root gets
#   MF_PYTHON, MF_PIP  the interpreter and the install command (venv.sh)
#   MF_RESTART       the restart command; "" for none
#   MF_SERVICES      init scripts restarted after the app, one a line
#   MF_CRONTAB       the crontab file in each release; "" for none
#   MF_CRONTAB_USER  whose crontab it is
#   MF_SUDO, MF_CURRENT, MF_DIR0, MF_DIR1, MF_VENV  (every phase)
# Prints: magefab:check NAME STATUS TEXT FIX for each check (STATUS ok,
# warn or fail; FIX "" when ok), and adopt's results (adopt quiet).
me=$(id -un)

check() { printf 'magefab:check\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}"; }

# sudo: sudo -n may run every privileged step, without a password.
sudo_ok=
if [ "${MF_SUDO:-}" != 1 ]; then
  check sudo ok "privileged steps run as $me, without sudo"
elif ! command -v sudo >/dev/null 2>&1; then
  check sudo fail "sudo is not installed, and privileged steps run with sudo -n" "install sudo, or run the privileged steps as $me without it"
elif sudo -n true 2>/dev/null </dev/null; then
  sudo_ok=1
  check sudo ok "sudo -n works for $me"
else
  denied=
  # may CMD ARG... succeeds when sudo -n lets me run the command.
  may() { sudo -n -l "$@" >/dev/null 2>&1 </dev/null; }
  if [ -n "$MF_RESTART" ] && ! may /bin/sh -c "$MF_RESTART"; then denied="/bin/sh -c '$MF_RESTART'"; fi
  IFS=$nl; set -f
  for svc in $MF_SERVICES; do
    may "$svc" restart || denied="$denied${denied:+, }$svc restart"
  done
  IFS=$ifs0; set +f
  if [ -n "$MF_CRONTAB" ] && ! may crontab -u "$MF_CRONTAB_USER" /dev/null; then denied="$denied${denied:+, }crontab -u $MF_CRONTAB_USER"; fi
  if [ -n "$denied" ]; then
    check sudo fail "sudo -n asks $me for a password (or refuses) to run: $denied" "let $me run them without a password (a sudoers line: $me ALL=(root) NOPASSWD: ...), or run the privileged steps without sudo"
  else
    check sudo ok "sudo -n lets $me run the restart and the after-switch steps"
  fi
fi

# The deploy root: there and writable, or creatable.
if [ -d "$root" ]; then
  if [ -w "$root" ] && [ -x "$root" ]; then check root ok "$root exists, writable by $me"
  else check root fail "$root exists but $me cannot write it" "sudo chown -R $me:$MF_GROUP $root (or make it group-writable with $me in its group)"; fi
else
  p=$root
  while [ ! -e "$p" ] && [ "$p" != / ]; do p=$(dirname "$p"); done
  if [ -w "$p" ]; then check root ok "$root does not exist yet: the first deploy creates it ($p is writable by $me)"
  elif [ -n "$sudo_ok" ]; then check root ok "$root does not exist yet: the first deploy creates it with sudo -n"
  else check root fail "$root does not exist, and $me can create it neither in $p nor with sudo -n" "create it: sudo mkdir -p $root && sudo chown $me:$MF_GROUP $root"; fi
fi

# git, and the way to the repository.
if ! command -v git >/dev/null 2>&1; then
  check git fail "git is not installed" "install git (Debian: apt-get install git)"
else
  case $MF_SCM_KIND in
  ssh)
    kh="$HOME/.ssh/known_hosts"
    if ! command -v ssh-keygen >/dev/null 2>&1; then
      check git fail "ssh-keygen is not installed (nor, probably, ssh, which git needs for $MF_SCM)" "install openssh-client"
    elif ssh-keygen -F "$MF_SCM_HOST" -f "$kh" >/dev/null 2>&1 || ssh-keygen -F "$MF_SCM_HOST" -f /etc/ssh/ssh_known_hosts >/dev/null 2>&1; then
      check git ok "the key of $MF_SCM_HOST is known to $me (git clones $MF_SCM with the agent a deploy forwards)"
    else
      check git fail "the key of $MF_SCM_HOST is in neither $kh nor /etc/ssh/ssh_known_hosts: git would refuse to clone $MF_SCM" "as $me on this host: ssh-keyscan $MF_SCM_HOST >> $kh, then compare its fingerprint (ssh-keygen -lf $kh) with the one the git server publishes"
    fi ;;
  local)
    if git ls-remote "$MF_SCM" HEAD >/dev/null 2>&1 </dev/null; then check git ok "$me can read $MF_SCM"
    else check git fail "$me cannot read the repository $MF_SCM" "make it readable by $me (or change the SCM)"; fi ;;
  *)
    if GIT_TERMINAL_PROMPT=0 timeout 20 git ls-remote "$MF_SCM" HEAD >/dev/null 2>&1 </dev/null; then check git ok "$me can read $MF_SCM"
    else check git fail "git ls-remote $MF_SCM fails as $me on this host" "make the repository reachable from here, with credentials that need no prompt"; fi ;;
  esac
fi

# python, and what makes a virtualenv.
if ! hostpy=$(command -v "$MF_PYTHON"); then
  check python fail "$MF_PYTHON is not found on this host" "install it (Debian: apt-get install python3), or change the interpreter"
elif ! pyv=$("$hostpy" -c 'import sys, venv; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null </dev/null); then
  check python fail "$hostpy cannot make virtualenvs (no venv module)" "install it (Debian: apt-get install python3-venv)"
else
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_PIP
  IFS=$ifs0; set +f
  pipdir=-; findpip
  if [ "${1-}" != pip ] || [ -n "$pipdir" ]; then check python ok "$hostpy ($pyv) makes virtualenvs"
  elif "$hostpy" -c 'import ensurepip' >/dev/null 2>&1 </dev/null; then check python ok "$hostpy ($pyv) makes virtualenvs, with pip"
  else check python fail "$hostpy ($pyv) has neither ensurepip nor a pip >= 22.3 to put pip into a new virtualenv" "install python3-venv (or python3-pip)"; fi
fi

# The restart command: its first word (after NAME=value words) exists.
if [ -z "$MF_RESTART" ]; then
  check restart ok "no restart command"
else
  IFS=' 	'; set -f
  # shellcheck disable=SC2086 # the command's words
  set -- $MF_RESTART
  IFS=$ifs0; set +f
  while [ $# -gt 1 ]; do case $1 in [A-Za-z_]*=*) shift ;; *) break ;; esac; done
  w=${1-}
  case $w in
  */*) if [ -x "$w" ]; then found=$w; else found=; fi ;;
  *) found=$(command -v "$w" 2>/dev/null) || found= ;;
  esac
  if [ -n "$found" ]; then check restart ok "$w exists (not run by the check: it must exit 0 once the app restarted)"
  else check restart fail "the restart command's $w is not found on this host, or not executable" "install the app's init script as $w, or change the restart command"; fi
fi

# current: none yet, or a release dir; and what the dirs hold.
cur=$(readlink "$root/$MF_CURRENT" 2>/dev/null || true); cur=${cur%/}; cur=${cur##*/}
if [ ! -d "$root/$MF_DIR0/.git" ] && [ ! -d "$root/$MF_DIR1/.git" ]; then
  check current ok "nothing deployed yet: the first deploy clones the repository into $MF_DIR0 and $MF_DIR1"
else
  case $cur in
  '') check current warn "no $MF_CURRENT link in $root: nothing was switched to yet" "" ;;
  "$MF_DIR0"|"$MF_DIR1") check current ok "$MF_CURRENT -> $cur" ;;
  *) check current fail "$root/$MF_CURRENT points to $cur, which is not one of the release dirs $MF_DIR0 and $MF_DIR1: a deploy refuses it" "point it at the release dir that serves: ln -sfn $MF_DIR0 $root/$MF_CURRENT (or $MF_DIR1)" ;;
  esac
fi
adopt quiet

# The crontab file in the live release, and the crontab command.
if [ -n "$MF_CRONTAB" ]; then
  if ! command -v crontab >/dev/null 2>&1; then
    check crontab fail "the crontab command is not installed (needed to install $MF_CRONTAB)" "install cron"
  elif [ "$cur" != "$MF_DIR0" ] && [ "$cur" != "$MF_DIR1" ]; then
    check crontab ok "nothing live yet: every release deployed must hold $MF_CRONTAB"
  elif [ ! -f "$root/$cur/$MF_CRONTAB" ]; then
    check crontab fail "crontab file $MF_CRONTAB is missing from the live release $cur ($root/$cur/$MF_CRONTAB)" "add it to the repository (every release must hold it), or change the environment's crontab file"
  else
    if [ "$cur" = "$MF_DIR0" ]; then other=$MF_DIR1; else other=$MF_DIR0; fi
    if [ -d "$root/$other/.git" ] && [ ! -f "$root/$other/$MF_CRONTAB" ]; then
      check crontab warn "$MF_CRONTAB is in the live release $cur, but missing from $other: a rollback to $other would be refused" "deploy a release that holds it before you need a rollback"
    else
      check crontab ok "$MF_CRONTAB is in the live release $cur"
    fi
  fi
fi

# The lock.
if [ -d "$lock" ]; then
  lock_read
  silent=$(( $(date +%s) - beat ))
  if [ "$silent" -gt "$lease" ]; then
    check lock warn "a stale lock of $(lock_field owner 200): silent for ${silent}s, its lease expired" "nothing: the next deploy takes it over"
  else
    check lock fail "locked by $(lock_field owner 200) since $(date -u -d "@$since" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "$since"): a deploy or rollback is running" "wait for it to end; if it died, unlock the host"
  fi
else
  check lock ok "not locked"
fi
