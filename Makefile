# verify-image-signatures: build, test and run the policy.
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
POLICY_SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock

.PHONY: test unit-tests e2e-tests lint fmt demo clean

policy.wasm: $(POLICY_SOURCES)
	$(CARGO) build --release --target $(WASM_TARGET) -p verify-image-signatures
	cp target/$(WASM_TARGET)/release/verify_image_signatures.wasm $@

## All tests: the policy's unit tests, then the end-to-end suite through a real host and registry.
test: unit-tests e2e-tests

unit-tests:
	$(CARGO) test -p verify-image-signatures

e2e-tests: policy.wasm
	POLICY_WASM=$(CURDIR)/policy.wasm $(CARGO) test -p e2e-tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p verify-image-signatures --target $(WASM_TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -f policy.wasm
