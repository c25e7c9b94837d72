# The two commands of the README are `make up` and `make test`.
.PHONY: up down test lint fmt deps console openapi validate-deploy bench chaos chaos-cluster fuzz deny

up: ## install/start Postgres and RabbitMQ if needed, build, migrate, run API + dispatcher
	scripts/up.sh

down: ## stop what `make up` started
	scripts/down.sh

test: ## every test, against real Postgres and RabbitMQ
	scripts/test.sh

lint: ## formatting and clippy, warnings are errors; SDK and console: generated types fresh, tsc --strict, biome
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/console.sh
	cd clients/typescript && npm run --silent lint
	cd console && npm run --silent lint

fmt:
	cargo fmt --all

console: ## build the web console (console/dist), which the API embeds when it is compiled next
	scripts/console.sh

deps: ## install and start the services only
	scripts/deps.sh

openapi: ## regenerate proto-docs/openapi.json from the code, and the SDK's types from it
	cargo run -q -p octohooks-api --bin octohooks-api -- openapi > proto-docs/openapi.json
	scripts/node-deps.sh
	cd clients/typescript && npm run --silent generate

validate-deploy: ## offline checks of Dockerfile, docker-compose.yml and deploy/ (kustomize + Kubernetes schemas)
	python3 scripts/validate_deploy
	python3 -m unittest discover -s scripts/validate_deploy

bench: ## the reproducible benchmark (release build; prints a table, writes bench-results.json)
	scripts/deps.sh
	scripts/node-deps.sh
	cd clients/typescript && npm run --silent build
	cargo build --release --bins
	target/release/octohooks-bench $(BENCH_ARGS)

chaos: ## fault tests: RabbitMQ stopped, Postgres restarted, API killed, under load
	scripts/chaos.sh

chaos-cluster: ## a 3-node RabbitMQ cluster on loopback, its leader node killed during delivery
	scripts/chaos-cluster.sh

fuzz: ## schemathesis against proto-docs/openapi.json: no 5xx, every answer as documented
	scripts/fuzz-api.sh

deny: ## cargo-deny: advisories, licenses, bans, sources
	scripts/deny.sh
