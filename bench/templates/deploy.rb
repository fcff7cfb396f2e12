# config valid for current version and patch releases of Capistrano
lock "~> 3.17"

set :application, "{{.Unit}}"
set :repo_url, "{{.Remote}}"

# Deploy a tag or a branch: BRANCH=v0.3.0 cap production deploy
set :branch, ENV.fetch("BRANCH", "master")

set :deploy_to, "/var/webapps/{{.Unit}}"
set :tmp_dir, "/tmp/{{.Unit}}"
set :keep_releases, 5

# Offline wheels the hosts install the requirements from
set :wheelhouse, "{{.Wheels}}"

namespace :deploy do
  desc "Create the deploy root, owned by the deploy user"
  task :deploy_root do
    on roles(:app) do
      unless test("[ -w #{fetch(:deploy_to)} ]")
        execute :sudo, :mkdir, "-p", fetch(:deploy_to)
        execute :sudo, :chown, "deploy:deploy", fetch(:deploy_to)
      end
    end
  end
  before "deploy:check:directories", "deploy:deploy_root"

  desc "Build the release's virtualenv and install the requirements"
  task :virtualenv do
    on roles(:app) do
      within release_path do
        execute "/usr/bin/python3", "-m", "venv", "env"
        execute "env/bin/pip", "install", "--quiet", "--no-index", "--find-links", fetch(:wheelhouse), "-r", "requirements.txt"
      end
    end
  end
  after "deploy:updated", "deploy:virtualenv"

  desc "Restart the app"
  task :restart do
    on roles(:app) do
      execute :sudo, "/etc/init.d/#{fetch(:application)}", "restart"
    end
  end
  after "deploy:publishing", "deploy:restart"
end
