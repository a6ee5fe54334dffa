#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus into seeds/<target>/: the request shapes,
settings and image spellings of the unit and end-to-end tests, one file each."""

import hashlib
import json
import pathlib

HERE = pathlib.Path(__file__).parent
DATA = HERE.parent / "tests" / "data"
KEY = (DATA / "key1.pub").read_text()
CERT = (DATA / "ca.crt").read_text()
DIGEST = "sha256:" + "a" * 64

IMAGES = [
    "nginx", "nginx:latest", "library/nginx", "docker.io/nginx", "INDEX.DOCKER.IO/library/nginx",
    "registry-1.docker.io/library/nginx", "docker.io:443/nginx", "GHCR.io/acme/app:v1",
    "ghcr.io:443/acme/app:v1", "127.0.0.1:5000/acme/app", "localhost/app", "acme/app",
    f"ghcr.io/acme/app:v1@{DIGEST}", f"ghcr.io/acme/app@{DIGEST}", "registry.k8s.io/pause:3.9",
    "Nginx", "app@sha256:abc", "app:", "a b", "ghcr.io//app", "quay.io/a/b-c__d.e:1.0-rc_1",
    # Crashes the fuzzer found: a port that kept a single-label host off Docker Hub, and a
    # name that `library/` takes past 255 characters.
    "foo:443/app", "a" * 248,
]
PATTERNS = [
    "*", "*:*", "nginx", "ghcr.io/acme/*", "*/acme/app", "*.example.com/*", "127.0.0.1:5000/*",
    "docker.io/library/nginx:*", "DOCKER.IO/library/ngin?", f"ghcr.io/acme/app@{DIGEST}",
    "ghcr.io/acme/app@sha256:*", "ghcr.io/acme/app:v/1", "ghcr.io/acme/app@md5:XYZ",
]
SETTINGS = [
    {"signatures": [{"image": "*", "pubKeys": [KEY]}]},
    {"signatures": [{"image": "ghcr.io/acme/*", "pubKeys": [KEY, KEY], "minimumMatches": 1,
                     "annotations": {"env": "prod"}}],
     "skipImages": ["registry.k8s.io/pause:*"], "rejectUnmatchedImages": True,
     "requireDigest": True, "modifyImagesWithDigest": False, "digestPinning": "none"},
    {"signatures": [{"image": "ghcr.io/acme/app:*",
                     "keyless": [{"issuer": "https://accounts.google.com", "subject": "a@acme.example"}]}],
     "digestPinning": "pods"},
    {"signatures": [{"image": "ghcr.io/acme/*", "keylessPrefix": [
        {"issuer": "https://token.actions.githubusercontent.com", "urlPrefix": "https://github.com/acme/"}]}]},
    {"signatures": [{"image": "ghcr.io/acme/*", "githubActions": {"owner": "acme", "repo": "app"}}]},
    {"signatures": [{"image": "registry.acme.example/*", "certificates": [CERT],
                     "certificateChain": [CERT], "requireRekorBundle": False}]},
    {"signatures": [{"image": "ghcr.io/acme/*", "anyOf": [
        {"keylessPrefix": [{"issuer": "https://token.actions.githubusercontent.com",
                            "url_prefix": "https://github.com/acme/"}]},
        {"pubKeys": [KEY], "annotations": {"release": "true"}}]}]},
    {"signatures": [{"image": "*", "pubKeys": [KEY]}],
     "imageLocations": [{"group": "example.com", "kind": "Widget",
                         "paths": ["spec.image", "spec.workers[*].image", 'metadata.annotations["a.b/c"]']}]},
    {"signatures": [{"image": "*", "pubkeys": [KEY]}]},
    {"signatures": [{"image": "*", "pubKeys": [KEY], "keyless": []}]},
    {"signatures": [{"image": "*", "pubKeys": [KEY]}],
     "imageLocations": [{"group": "g", "kind": "K", "paths": ["[*].x", "a..b"]}]},
]


def containers(images):
    return [{"name": f"c{i}", "image": image, "env": [{"name": "A", "value": "1"}]}
            for i, image in enumerate(images)]


def pod_spec(images):
    return {"containers": containers(images), "initContainers": containers(images[:1]),
            "ephemeralContainers": containers(images[1:2])}


def objects():
    images = ["ghcr.io/acme/app:v1", "nginx", f"ghcr.io/acme/app@{DIGEST}"]
    template = {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec(images)}
    yield "Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec(images)}
    for kind in ["Deployment", "StatefulSet", "Job", "Rollout"]:
        yield kind, {"kind": kind, "spec": {"replicas": 2, "template": template}}
    yield "CronJob", {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}
    yield "ConfigMap", {"kind": "ConfigMap", "data": {"a": "b"}}
    yield "Pod", {"spec": {"containers": [{"name": "x"}, {"name": "y", "image": ""}]}}
    yield "Pod", "not an object"
    yield "Deployment", [1, 2]


def family_objects():
    """Objects whose images lie outside pod specs: (group, kind, object)."""
    steps = [{"name": "s", "image": "ghcr.io/acme/app:v1"}, {"name": "t", "image": 5}]
    task = {"steps": steps, "sidecars": steps[:1], "stepTemplate": {"image": "nginx"}}
    yield "tekton.dev", "TaskRun", {"spec": {"taskSpec": task}}
    yield "tekton.dev", "PipelineRun", {"spec": {"pipelineSpec": {"tasks": [
        {"taskSpec": task}, {"pipelineSpec": {"tasks": [{"taskSpec": task}]}}]}}}
    template = {"container": {"image": "nginx"}, "steps": [[{"inline": {"script": {"image": "a"}}}]]}
    yield "argoproj.io", "Workflow", {"spec": {"templates": [template], "templateDefaults": template}}
    yield "argoproj.io", "CronWorkflow", {"spec": {"workflowSpec": {"templates": "x"}}}
    vmi = {"volumes": [{"containerDisk": {"image": "ghcr.io/acme/disk:v1"}}],
           "domain": {"firmware": {"kernelBoot": {"container": {"image": None}}}}}
    yield "kubevirt.io", "VirtualMachine", {"spec": {"template": {"spec": vmi}}}
    yield "example.com", "Widget", {"metadata": {"annotations": {"a.b/c": "nginx"}},
                                    "spec": {"image": "", "workers": [{"image": "acme/app"}]}}


def payloads():
    for settings in SETTINGS[:8]:
        for kind, obj in objects():
            request = {"uid": "1", "kind": {"group": "", "version": "v1", "kind": kind},
                       "operation": "CREATE", "object": obj}
            yield {"request": request, "settings": settings}
        for group, kind, obj in family_objects():
            request = {"uid": "1", "kind": {"group": group, "version": "v1", "kind": kind},
                       "operation": "CREATE", "object": obj}
            yield {"request": request, "settings": settings}
    ephemeral = {"uid": "1", "kind": {"kind": "Pod"}, "subResource": "ephemeralcontainers",
                 "operation": "UPDATE", "object": next(objects())[1]}
    yield {"request": ephemeral, "settings": SETTINGS[0]}
    yield {"request": {"kind": {"kind": "Pod"}, "operation": "DELETE", "object": None},
           "settings": SETTINGS[0]}
    yield {"request": {"kind": {"kind": "Pod"}, "operation": "CREATE"}, "settings": SETTINGS[0]}


def variant(index, count):
    """An enum's variant as `arbitrary` decodes it: a little-endian u32, scaled to the count."""
    return (((index << 32) + count - 1) // count).to_bytes(4, "little")


def structured():
    """Byte strings the `arbitrary` crate decodes into validate_structured's input:
    kind, operation, subresource, settings, old object, then the object's variant and
    strings. Requests are CREATE, and UPDATE with the same old object on the resource,
    on `ephemeralcontainers` and on `status`, and UPDATE with a null old object."""
    requests = [(0, 0, 0), (1, 0, 2), (1, 1, 2), (1, 2, 2), (1, 0, 1)]
    for kind in range(6):
        for settings in range(3):
            for operation, subresource, old in requests:
                body = bytes([kind, operation, subresource])
                body += variant(settings, 3) + variant(old, 4) + variant(1, 2)
                # Workload: the fuzzer grows the container lists from a short raw tail.
                for image in IMAGES[:: 4]:
                    yield body + b"\x01" + image.encode()
        raw = variant(0, 3) + variant(0, 4) + variant(0, 2)
        yield bytes([kind, 0, 0]) + raw + json.dumps(next(objects())[1]).encode()


def write(target, seeds):
    directory = HERE / "seeds" / target
    directory.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


write("validate", (json.dumps(p).encode() for p in payloads()))
write("validate_settings", (json.dumps(s).encode() for s in SETTINGS))
write("image_reference", (f"{i}\n{p}".encode() for i in IMAGES for p in PATTERNS[::3]))
write("validate_structured", structured())
