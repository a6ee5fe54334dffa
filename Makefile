# verify-image-signatures: build, test and run the policy.
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
POLICY_SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock

.PHONY: prerequisites test unit-tests e2e-tests e2e-kubewarden lint fmt demo clean push fuzz deny mutants bench \
	check-manifests bench-manifests

## What a fresh machine lacks (as root): the wasm target, binaryen's wasm-opt, and the
## registry the tests start.
prerequisites:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v docker-registry >/dev/null && command -v wasm-opt >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry binaryen; }

## The policy module: rustc's output, then binaryen's optimiser (the features are those
## rustc enables for the target).
WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue
policy.wasm: $(POLICY_SOURCES) | prerequisites
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p verify-image-signatures
	wasm-opt -O3 $(WASM_FEATURES) target/$(WASM_TARGET)/wasm/verify_image_signatures.wasm -o $@

## The host's floor for `make bench`: a policy that accepts without reading its payload (the
## bench builds it again per case with that case's host calls, into target/floor).
FLOOR_SOURCES := $(wildcard e2e-tests/floor-policy/src/*.rs) e2e-tests/floor-policy/build.rs \
	e2e-tests/floor-policy/Cargo.toml e2e-tests/floor-policy/metadata.yml
floor-policy.wasm: $(FLOOR_SOURCES) | prerequisites require-kwctl
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p floor-policy
	kwctl annotate -m e2e-tests/floor-policy/metadata.yml -o $@ target/$(WASM_TARGET)/wasm/floor_policy.wasm

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# The real Kubewarden binaries: annotating and publishing need kwctl; `make e2e-kubewarden`
# also runs policy-server.
KUBEWARDEN_RELEASES := Kubewarden's GitHub releases
require-%:
	@command -v $* >/dev/null || { echo "error: \`$*\` is not on PATH. Get it from $(KUBEWARDEN_RELEASES)" >&2; exit 1; }

## The policy as Kubewarden ships it: metadata.yml, the README and the protocol version embedded.
annotated-policy.wasm: policy.wasm metadata.yml README.md | require-kwctl
	kwctl annotate -m metadata.yml -u README.md -o $@ policy.wasm

## Publish: make push REGISTRY=ghcr.io/acme [SOURCES=sources.yml for a plain-HTTP registry].
push: annotated-policy.wasm | require-kwctl
	$(if $(REGISTRY),,$(error set REGISTRY, e.g. make push REGISTRY=ghcr.io/acme))
	kwctl push $(if $(SOURCES),--sources-path $(SOURCES)) annotated-policy.wasm \
		registry://$(REGISTRY)/policies/verify-image-signatures:v$(VERSION)

## The end-to-end tests on every supported Kubewarden version (oldest and newest), on
## `kwctl run` and on a policy-server loading the policy from the local registry, the
## registry faults included; each run names its backend and version. The binaries are
## kwctl-VERSION and policy-server-VERSION.
KUBEWARDEN_VERSIONS := 1.31.0 1.35.0
E2E_BACKENDS := kwctl policy-server
e2e-kubewarden: annotated-policy.wasm policy.wasm
	@for version in $(KUBEWARDEN_VERSIONS); do \
		for backend in $(E2E_BACKENDS); do \
			echo "=== end-to-end suite on $$backend $$version ===" && \
			E2E_KUBEWARDEN_VERSION=$$version E2E_BACKEND=$$backend POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
				$(CARGO) test -p e2e-tests --test policy --test fixtures --test faults \
				|| { echo "=== FAILED on $$backend $$version ===" >&2; exit 1; }; \
			echo "=== passed on $$backend $$version ==="; \
		done; \
		echo "=== packaging, policy-server stress and the bench's floors on Kubewarden $$version ===" && \
		E2E_KUBEWARDEN_VERSION=$$version POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
			$(CARGO) test -p e2e-tests --test artifact --test policy_server --test bench \
			|| { echo "=== FAILED on Kubewarden $$version ===" >&2; exit 1; }; \
		echo "=== check-manifests on Kubewarden $$version ===" && \
		E2E_KUBEWARDEN_VERSION=$$version POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
			$(CARGO) test -p check-manifests --test check_manifests \
			|| { echo "=== FAILED: check-manifests on Kubewarden $$version ===" >&2; exit 1; }; \
	done

## All tests: the policy's unit tests, then every end-to-end test on the real kwctl and
## policy-server on PATH, against a real registry.
test: unit-tests e2e-tests

unit-tests:
	$(CARGO) test -p verify-image-signatures -p host-driver
	$(CARGO) test -p check-manifests --lib

e2e-tests: annotated-policy.wasm policy.wasm | require-kwctl require-policy-server
	POLICY_WASM=$(CURDIR)/annotated-policy.wasm $(CARGO) test -p e2e-tests
	POLICY_WASM=$(CURDIR)/annotated-policy.wasm $(CARGO) test -p check-manifests --test check_manifests

## The policy's main job, end to end in the real kwctl: real registry, real signatures,
## verdicts, patches, warnings and audit annotations; then check-manifests on two charts.
demo: annotated-policy.wasm
	$(CARGO) build -q -p check-manifests
	$(CARGO) run -q -p e2e-tests --bin demo -- $(CURDIR)/annotated-policy.wasm $(CURDIR)/target/debug/check-manifests

## Rendered manifests checked as the cluster would check them (README "Checking manifests
## before they reach the cluster"): the real host, the settings of SETTINGS, the files and
## directories of MANIFESTS (- for standard input), and ARGS passed on, e.g.
## make check-manifests SETTINGS=settings.yml MANIFESTS=rendered/ ARGS="--sources-path sources.yml"
check-manifests: annotated-policy.wasm | require-kwctl
	$(if $(SETTINGS),,$(error set SETTINGS, e.g. make check-manifests SETTINGS=settings.yml MANIFESTS=rendered/))
	$(if $(MANIFESTS),,$(error set MANIFESTS: files, directories, or - for standard input))
	@$(CARGO) run -q --release -p check-manifests -- --settings $(SETTINGS) \
		--policy $(CURDIR)/annotated-policy.wasm --metadata $(CURDIR)/metadata.yml $(ARGS) $(MANIFESTS)

## check-manifests on 500 objects of a chart mix, against one `kwctl run` per object, both
## end to end (README "Checking manifests before they reach the cluster"). Figures only.
BENCH_MANIFESTS_ARGS ?=
bench-manifests: annotated-policy.wasm | require-kwctl require-policy-server
	$(CARGO) build -q --release -p check-manifests
	$(CARGO) run -q --release -p e2e-tests --bin bench-manifests -- --policy $(CURDIR)/annotated-policy.wasm \
		--check-manifests $(CURDIR)/target/release/check-manifests $(BENCH_MANIFESTS_ARGS)

## What the policy itself costs in the real `kwctl bench`, against a live local registry: the
## policy, the floor policy and each case's host-call and reading floors side by side, and the
## policy's cost above them (README "Performance"). Figures only, never pass/fail; refused if a
## host call fails while timed. BENCH_ARGS="--policy other.wasm" times another build in the
## same rounds.
BENCH_ARGS ?=
bench: annotated-policy.wasm floor-policy.wasm
	$(CARGO) run -q --release -p e2e-tests --bin bench -- --policy $(CURDIR)/annotated-policy.wasm \
		--floor $(CURDIR)/floor-policy.wasm --floor-crate $(CURDIR)/e2e-tests/floor-policy \
		--floor-target $(CURDIR)/target/floor $(BENCH_ARGS)

## Where one evaluation's instructions go, natively (README "Performance"): each matching case
## of 1, 10 and 50 containers under callgrind, cut into reading, matching, host-call payloads and
## answers, the patch and the answer. PROFILE_CASES="..." names other `make bench` cases.
PROFILE_CASES ?= "1 container, 1 image, rule matches, 1 key" "10 containers, 3 images, rule matches, 1 key" \
	"50 containers, 50 images, rule matches, 1 key"
.PHONY: profile
profile:
	$(CARGO) build -q --release -p e2e-tests --bin profile
	@for case in $(PROFILE_CASES); do \
		echo "=== $$case ===" && \
		valgrind --tool=callgrind --callgrind-out-file=target/callgrind.out target/release/profile "$$case" 2>/dev/null && \
		callgrind_annotate --inclusive=yes target/callgrind.out | target/release/profile --cut || exit 1; \
	done

## The real policy-server under load (README "Load test"): a local registry, the policy pushed
## with kwctl and loaded from registry://, 2,000 AdmissionReviews from 8 clients, then the
## registry slow, down and back through a fault proxy (README "Registry outages"), on every
## supported version. Figures only; fails only on a transport error or a wrong verdict.
.PHONY: load
load: annotated-policy.wasm
	@for version in $(KUBEWARDEN_VERSIONS); do \
		echo "=== load test on policy-server $$version ===" && \
		E2E_KUBEWARDEN_VERSION=$$version $(CARGO) run -q --release -p e2e-tests --bin load -- \
			--policy $(CURDIR)/annotated-policy.wasm || exit 1; \
	done

## Fuzz each target for FUZZ_SECONDS (libFuzzer, native build, fake verifier). The grown
## corpus stays in fuzz/corpus/ (not committed); fuzz/seeds/ is written by fuzz/seeds.py.
## cargo-fuzz passes -Z flags: RUSTC_BOOTSTRAP lets a stable toolchain accept them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := validate validate_structured validate_settings image_reference
fuzz:
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$target && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

## Mutation testing of the policy's logic (cargo install cargo-mutants): every mutant
## that changes behaviour must be caught. Results in mutants.out/.
MUTATED := -f 'src/settings/**' -f 'src/image/**' -f 'src/evaluation/**' -f 'src/verifier/**' -f src/plan.rs -f src/verdict.rs \
	-f src/rejection.rs -f src/mutation.rs -f src/report.rs
mutants:
	$(CARGO) mutants -p verify-image-signatures $(MUTATED) -j 1 --timeout 60 --gitignore=true \
		--cargo-test-arg=--tests

## Licenses, banned crates and sources of every dependency (deny.toml). Advisories need a
## database fetched from GitHub, which CI cannot reach.
deny:
	$(CARGO) deny --workspace check licenses bans sources

## Formatting, clippy, and every `make`/`kwctl` command and settings example of README.md and
## DEVELOPMENT.md checked against the Makefile, both kwctl versions and the policy's own
## settings validation (e2e-tests/tests/docs.rs).
lint: prerequisites | require-kwctl-1.31.0 require-kwctl-1.35.0
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p verify-image-signatures --target $(WASM_TARGET) -- -D warnings
	$(CARGO) test -q -p e2e-tests --test docs

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -f policy.wasm annotated-policy.wasm floor-policy.wasm
