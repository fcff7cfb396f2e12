# {{len .Hosts}} host(s) of the local fleet
{{range .Hosts}}server "{{.}}", user: "deploy", roles: %w{app}
{{end}}
set :ssh_options, {
  port: {{.Port}},
  user: "deploy",
  keys: %w({{.Key}}),
  keys_only: true,
  auth_methods: %w(publickey),
  verify_host_key: :always,
  user_known_hosts_file: "{{.KnownHosts}}",
  config: false,
}
