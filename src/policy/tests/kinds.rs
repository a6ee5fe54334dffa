//! Images outside pod specs: the built-in families (Tekton, Argo Workflows, KubeVirt) and
//! kinds whose image paths the settings name (`imageLocations`).

use super::*;

fn request(group: &str, kind: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let mut request = json!({
        "uid": "1",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": operation,
        "object": object,
    });
    if let Some(old) = old {
        request["oldObject"] = old.clone();
    }
    request
}

fn payload_of(settings: &Value, request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": request, "settings": settings})).unwrap()
}

fn create(settings: &Value, group: &str, kind: &str, object: &Value, host: &FakeHost) -> Verdict {
    validate(
        &payload_of(settings, request(group, kind, "CREATE", object, None)),
        host,
    )
}

fn step(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "script": "echo hi", "env": [{"name": "A", "value": "1"}]})
}

fn task_spec(prefix: &str) -> Value {
    json!({
        "params": [{"name": "x", "type": "string"}],
        "steps": [step("build", &format!("ghcr.io/acme/{prefix}-build:v1")), step("test", &format!("ghcr.io/acme/{prefix}-test:v1"))],
        "sidecars": [step("db", &format!("ghcr.io/acme/{prefix}-db:v1"))],
        "stepTemplate": {"image": format!("ghcr.io/acme/{prefix}-base:v1"), "env": []},
    })
}

/// Where a task spec at `at` holds its images, as JSON pointers.
fn task_spec_pointers(at: &str) -> Vec<String> {
    [
        "steps/0/image",
        "steps/1/image",
        "sidecars/0/image",
        "stepTemplate/image",
    ]
    .iter()
    .map(|p| format!("{at}/{p}"))
    .collect()
}

/// Every object of every family, with the JSON pointers of its images in document order.
fn family_objects() -> Vec<(&'static str, &'static str, Value, Vec<String>)> {
    let pipeline_spec = json!({
        "tasks": [
            {"name": "a", "taskSpec": task_spec("a")},
            {"name": "b", "taskRef": {"name": "shared"}},
            {"name": "c", "pipelineSpec": {"tasks": [{"name": "c1", "taskSpec": task_spec("c1")}]}},
        ],
        "finally": [{"name": "f", "taskSpec": task_spec("f")}],
    });
    let pipeline_pointers = |at: &str| -> Vec<String> {
        [
            task_spec_pointers(&format!("{at}/tasks/0/taskSpec")),
            task_spec_pointers(&format!("{at}/tasks/2/pipelineSpec/tasks/0/taskSpec")),
            task_spec_pointers(&format!("{at}/finally/0/taskSpec")),
        ]
        .concat()
    };
    let template = |name: &str| {
        json!({
            "name": name,
            "inputs": {"parameters": [{"name": "p"}]},
            "container": {"image": format!("ghcr.io/acme/{name}-main:v1"), "command": ["run"]},
            "initContainers": [{"name": "i", "image": format!("ghcr.io/acme/{name}-init:v1")}],
            "sidecars": [{"name": "s", "image": format!("ghcr.io/acme/{name}-side:v1")}],
        })
    };
    let workflow_spec = json!({
        "entrypoint": "main",
        "templateDefaults": {"container": {"image": "ghcr.io/acme/default:v1"}},
        "templates": [
            template("t0"),
            {"name": "script", "script": {"image": "ghcr.io/acme/script:v1", "source": "echo"}},
            {"name": "set", "containerSet": {"containers": [{"name": "x", "image": "ghcr.io/acme/set-x:v1"}, {"name": "y", "image": "ghcr.io/acme/set-y:v1"}]}},
            {"name": "steps", "steps": [[{"name": "s1", "template": "t0"}, {"name": "s2", "inline": {"container": {"image": "ghcr.io/acme/inline-step:v1"}}}]]},
            {"name": "dag", "dag": {"tasks": [{"name": "d1", "inline": {"script": {"image": "ghcr.io/acme/inline-dag:v1"}}}]}},
        ],
    });
    let workflow_pointers = |at: &str| -> Vec<String> {
        [
            "templateDefaults/container/image",
            "templates/0/container/image",
            "templates/0/initContainers/0/image",
            "templates/0/sidecars/0/image",
            "templates/1/script/image",
            "templates/2/containerSet/containers/0/image",
            "templates/2/containerSet/containers/1/image",
            "templates/3/steps/0/1/inline/container/image",
            "templates/4/dag/tasks/0/inline/script/image",
        ]
        .iter()
        .map(|p| format!("{at}/{p}"))
        .collect()
    };
    let vmi_spec = json!({
        "domain": {
            "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
            "firmware": {"kernelBoot": {"container": {"image": "ghcr.io/acme/kernel:v1", "kernelPath": "/boot/vmlinuz"}}},
        },
        "volumes": [
            {"name": "root", "containerDisk": {"image": "ghcr.io/acme/disk:v1"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "tools", "containerDisk": {"image": "ghcr.io/acme/tools-disk:v1"}},
        ],
    });
    let vmi_pointers = |at: &str| -> Vec<String> {
        [
            "domain/firmware/kernelBoot/container/image",
            "volumes/0/containerDisk/image",
            "volumes/2/containerDisk/image",
        ]
        .iter()
        .map(|p| format!("{at}/{p}"))
        .collect()
    };
    vec![
        (
            "tekton.dev",
            "Task",
            json!({"spec": task_spec("t")}),
            task_spec_pointers("/spec"),
        ),
        (
            "tekton.dev",
            "ClusterTask",
            json!({"spec": task_spec("t")}),
            task_spec_pointers("/spec"),
        ),
        (
            "tekton.dev",
            "TaskRun",
            json!({"spec": {"serviceAccountName": "sa", "taskSpec": task_spec("t")}}),
            task_spec_pointers("/spec/taskSpec"),
        ),
        (
            "tekton.dev",
            "Pipeline",
            json!({"spec": pipeline_spec.clone()}),
            pipeline_pointers("/spec"),
        ),
        (
            "tekton.dev",
            "PipelineRun",
            json!({"spec": {"pipelineSpec": pipeline_spec}}),
            pipeline_pointers("/spec/pipelineSpec"),
        ),
        (
            "tekton.dev",
            "StepAction",
            json!({"spec": {"image": "ghcr.io/acme/action:v1", "script": "echo"}}),
            vec!["/spec/image".into()],
        ),
        (
            "argoproj.io",
            "Workflow",
            json!({"spec": workflow_spec.clone()}),
            workflow_pointers("/spec"),
        ),
        (
            "argoproj.io",
            "WorkflowTemplate",
            json!({"spec": workflow_spec.clone()}),
            workflow_pointers("/spec"),
        ),
        (
            "argoproj.io",
            "ClusterWorkflowTemplate",
            json!({"spec": workflow_spec.clone()}),
            workflow_pointers("/spec"),
        ),
        (
            "argoproj.io",
            "CronWorkflow",
            json!({"spec": {"schedules": ["* * * * *"], "workflowSpec": workflow_spec}}),
            workflow_pointers("/spec/workflowSpec"),
        ),
        (
            "kubevirt.io",
            "VirtualMachineInstance",
            json!({"spec": vmi_spec.clone()}),
            vmi_pointers("/spec"),
        ),
        (
            "kubevirt.io",
            "VirtualMachine",
            json!({"spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"a": "b"}}, "spec": vmi_spec.clone()}}}),
            vmi_pointers("/spec/template/spec"),
        ),
        (
            "kubevirt.io",
            "VirtualMachineInstanceReplicaSet",
            json!({"spec": {"replicas": 2, "template": {"spec": vmi_spec}}}),
            vmi_pointers("/spec/template/spec"),
        ),
    ]
}

/// `/spec/steps/0/image` as the policy names it: `spec.steps[0].image`.
fn dotted(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.trim_start_matches('/').split('/') {
        if part.parse::<usize>().is_ok() {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
        }
    }
    path
}

fn image_at(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// A host that signed every image of `object` at `pointers` with KEY-A.
fn signing(object: &Value, pointers: &[String]) -> FakeHost {
    pointers.iter().fold(FakeHost::default(), |host, pointer| {
        let image = image_at(object, pointer);
        let name = image.rsplit_once(':').unwrap().0.to_owned();
        host.signed(Box::leak(name.into_boxed_str()), "KEY-A")
    })
}

/// `pointers` in document order: where their (distinct) images sit in the object's text.
fn in_document_order(object: &Value, mut pointers: Vec<String>) -> Vec<String> {
    let text = object.to_string();
    pointers.sort_by_key(|p| text.find(&json!(image_at(object, p)).to_string()).unwrap());
    pointers
}

#[test]
fn every_family_kind_is_verified_and_pinned_where_its_images_are() {
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    for (group, kind, object, pointers) in family_objects() {
        let pointers = in_document_order(&object, pointers);
        // Unsigned: every image named, with its path, the kind in the header.
        let message = rejection(create(&rules, group, kind, &object, &FakeHost::default()));
        let expected: Vec<String> = pointers
            .iter()
            .map(|p| {
                format!(
                    "{} ({}): signatures[0] pubKeys: pubKeys[0]: no signatures",
                    dotted(p),
                    image_at(&object, p)
                )
            })
            .collect();
        assert_eq!(
            message,
            format!(
                "{} image{} of the {kind} failed verification: {}",
                pointers.len(),
                if pointers.len() == 1 { "" } else { "s" },
                expected.join("; ")
            ),
            "{kind}"
        );
        // Signed: each image pinned in place, and nothing else changed.
        let host = signing(&object, &pointers);
        let ops = patch(&object, create(&rules, group, kind, &object, &host));
        let expected: Vec<(String, String, Value)> = pointers
            .iter()
            .map(|p| {
                let pinned = format!("{}@{DIGEST_A}", image_at(&object, p));
                ("replace".to_owned(), p.clone(), json!(pinned))
            })
            .collect();
        let by_path = |mut ops: Vec<(String, String, Value)>| {
            ops.sort_by(|a, b| a.1.cmp(&b.1));
            ops
        };
        assert_eq!(by_path(ops), by_path(expected), "{kind}");
        assert_eq!(host.calls(), pointers.len(), "{kind}");
    }
}

#[test]
fn a_family_kind_of_another_group_is_not_read_as_the_family() {
    let rules = settings(json!([key_rule("*", "KEY-A")]));
    let host = FakeHost::default();
    for (group, kind) in [
        ("example.com", "Task"),
        ("", "Workflow"),
        ("acme.io", "VirtualMachine"),
    ] {
        let object = json!({"spec": {"steps": [step("s", "evil:v1")], "templates": [{"container": {"image": "evil:v1"}}]}});
        assert_eq!(
            create(&rules, group, kind, &object, &host),
            Verdict::Accept,
            "{group}/{kind}"
        );
    }
    assert_eq!(host.calls(), 0);
}

#[test]
fn a_field_that_is_not_a_string_rejects_the_object_with_its_path() {
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    for (image, what) in [
        (json!(5), "a string"),
        (json!(null), "a string"),
        (json!({"ref": "x"}), "a string"),
    ] {
        let object = json!({"spec": {"taskSpec": {"steps": [step("ok", "ghcr.io/acme/a:v1"), {"name": "bad", "image": image}]}}});
        let message = rejection(create(
            &rules,
            "tekton.dev",
            "TaskRun",
            &object,
            &FakeHost::default(),
        ));
        assert_eq!(
            message,
            format!("cannot read the TaskRun: spec.taskSpec.steps[1].image is not {what}")
        );
    }
    let object = json!({"spec": {"templates": {"container": {"image": "ghcr.io/acme/a:v1"}}}});
    let message = rejection(create(
        &rules,
        "argoproj.io",
        "Workflow",
        &object,
        &FakeHost::default(),
    ));
    assert_eq!(
        message,
        "cannot read the Workflow: spec.templates is not a list"
    );
    // An empty image is no image.
    let object = json!({"spec": {"image": ""}});
    let message = rejection(create(
        &rules,
        "tekton.dev",
        "StepAction",
        &object,
        &FakeHost::default(),
    ));
    assert_eq!(
        message,
        "1 image of the StepAction failed verification: spec.image: the field holds an empty image"
    );
}

#[test]
fn a_kind_the_settings_name_is_read_at_its_paths() {
    let rules = json!({
        "signatures": [key_rule("ghcr.io/acme/*", "KEY-A")],
        "imageLocations": [{
            "group": "example.com",
            "kind": "Widget",
            "paths": ["spec.image", "spec.workers[*].image", "spec.extra[*]", "metadata.annotations[\"example.com/sidecar\"]"],
        }],
    });
    let object = json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "annotations": {"example.com/sidecar": "ghcr.io/acme/sidecar:v1", "note": "ghcr.io/acme/not-an-image:v1"}},
        "spec": {
            "image": "ghcr.io/acme/main:v1",
            "workers": [{"image": "ghcr.io/acme/worker:v1", "replicas": 2}, {"replicas": 1}],
            "extra": ["ghcr.io/acme/extra:v1"],
            "unrelated": {"image": "ghcr.io/acme/ignored:v1"},
        },
    });
    let pointers: Vec<String> = [
        "/metadata/annotations/example.com~1sidecar",
        "/spec/image",
        "/spec/workers/0/image",
        "/spec/extra/0",
    ]
    .map(String::from)
    .to_vec();
    let message = rejection(create(
        &rules,
        "example.com",
        "Widget",
        &object,
        &FakeHost::default(),
    ));
    assert_eq!(
        message,
        "4 images of the Widget failed verification: \
         metadata.annotations.example.com/sidecar (ghcr.io/acme/sidecar:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; \
         spec.extra[0] (ghcr.io/acme/extra:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; \
         spec.image (ghcr.io/acme/main:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; \
         spec.workers[0].image (ghcr.io/acme/worker:v1): signatures[0] pubKeys: pubKeys[0]: no signatures"
    );
    let host = FakeHost::default()
        .signed("ghcr.io/acme/sidecar", "KEY-A")
        .signed("ghcr.io/acme/main", "KEY-A")
        .signed("ghcr.io/acme/worker", "KEY-A")
        .signed("ghcr.io/acme/extra", "KEY-A");
    let Verdict::Mutate(mutated) = create(&rules, "example.com", "Widget", &object, &host) else {
        panic!("expected a mutation");
    };
    let mut expected = object.clone();
    for pointer in &pointers {
        let at = expected.pointer_mut(pointer).unwrap();
        *at = json!(format!("{}@{DIGEST_A}", at.as_str().unwrap()));
    }
    assert_eq!(serde_json::from_str::<Value>(&mutated).unwrap(), expected);
    // The same kind in another group is not read.
    assert_eq!(
        create(&rules, "other.com", "Widget", &object, &FakeHost::default()),
        Verdict::Accept
    );
}

#[test]
fn paths_the_settings_name_for_a_family_kind_add_to_its_own() {
    let rules = json!({
        "signatures": [key_rule("ghcr.io/acme/*", "KEY-A")],
        "imageLocations": [{"group": "tekton.dev", "kind": "Task", "paths": ["spec.params[*].default"]}],
    });
    let object = json!({"spec": {"params": [{"name": "img", "default": "ghcr.io/acme/param:v1"}], "steps": [step("s", "ghcr.io/acme/step:v1")]}});
    let message = rejection(create(
        &rules,
        "tekton.dev",
        "Task",
        &object,
        &FakeHost::default(),
    ));
    assert!(
        message.starts_with("2 images of the Task failed verification: spec.params[0].default"),
        "{message}"
    );
    assert!(
        message.contains("; spec.steps[0].image (ghcr.io/acme/step:v1)"),
        "{message}"
    );
}

#[test]
fn a_kind_with_a_pod_template_and_named_paths_is_read_at_both() {
    let rules = json!({
        "signatures": [key_rule("ghcr.io/acme/*", "KEY-A")],
        "imageLocations": [{"group": "example.com", "kind": "Runner", "paths": ["spec.toolImage"]}],
    });
    let object = json!({"spec": {"toolImage": "ghcr.io/acme/tool:v1", "template": {"spec": {"containers": containers(&["ghcr.io/acme/app:v1"])}}}});
    let message = rejection(create(
        &rules,
        "example.com",
        "Runner",
        &object,
        &FakeHost::default(),
    ));
    assert!(message.starts_with("2 images of the Runner failed verification: spec.template.spec.containers[0] (ghcr.io/acme/app:v1)"), "{message}");
    assert!(message.ends_with("; spec.toolImage (ghcr.io/acme/tool:v1): signatures[0] pubKeys: pubKeys[0]: no signatures"), "{message}");
}

#[test]
fn an_update_verifies_and_pins_only_the_images_it_changes() {
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    let old = json!({"spec": {"taskSpec": {"steps": [step("a", "ghcr.io/acme/a:v1"), step("b", "ghcr.io/acme/b:v1")]}}});
    // A label change: nothing verified (the registry has nothing), nothing pinned.
    let mut labelled = old.clone();
    labelled["metadata"] = json!({"labels": {"x": "y"}});
    let host = FakeHost::default();
    let update = |new: &Value| {
        payload_of(
            &rules,
            request("tekton.dev", "TaskRun", "UPDATE", new, Some(&old)),
        )
    };
    assert_eq!(validate(&update(&labelled), &host), Verdict::Accept);
    assert_eq!(host.calls(), 0);
    // One step's image changed: only it is verified and pinned.
    let mut changed = old.clone();
    changed["spec"]["taskSpec"]["steps"][1]["image"] = json!("ghcr.io/acme/b:v2");
    let host = FakeHost::default().signed("ghcr.io/acme/b", "KEY-A");
    let ops = patch(&changed, validate(&update(&changed), &host));
    assert_eq!(
        ops,
        [(
            "replace".to_owned(),
            "/spec/taskSpec/steps/1/image".to_owned(),
            json!(format!("ghcr.io/acme/b:v2@{DIGEST_A}"))
        )]
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn warn_only_entries_and_pinning_scopes_apply_to_family_kinds() {
    let object = json!({"spec": {"image": "ghcr.io/acme/action:v1"}});
    let warn = json!({"signatures": [{"image": "ghcr.io/acme/*", "pubKeys": ["KEY-A"], "onFailure": "warn"}]});
    let answer = answer(
        &payload_of(
            &warn,
            request("tekton.dev", "StepAction", "CREATE", &object, None),
        ),
        &FakeHost::default(),
    );
    assert_eq!(answer.verdict, Verdict::Accept);
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/action:v1 at spec.image: signatures[0] (warn only): no-signatures"]
    );
    let pods_only =
        json!({"signatures": [key_rule("ghcr.io/acme/*", "KEY-A")], "digestPinning": "pods"});
    let host = FakeHost::default().signed("ghcr.io/acme/action", "KEY-A");
    assert_eq!(
        create(&pods_only, "tekton.dev", "StepAction", &object, &host),
        Verdict::Accept
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn image_locations_are_refused_naming_the_entry() {
    let refused = |locations: Value| {
        let settings = json!({"signatures": [key_rule("*", "KEY-A")], "imageLocations": locations});
        validate_settings(&serde_json::to_vec(&settings).unwrap()).unwrap_err()
    };
    assert_eq!(
        refused(json!([{"group": "g", "kind": "K", "paths": ["spec.image"], "path": "x"}])),
        "imageLocations[0].path: unknown field `path`, expected one of `group`, `kind`, `paths`"
    );
    assert_eq!(
        refused(json!([{"kind": "K", "paths": ["spec.image"]}])),
        "imageLocations[0]: missing field `group`"
    );
    assert_eq!(
        refused(json!([{"group": "g", "kind": "K", "paths": ["spec.ok", "spec..image"]}])),
        "imageLocations[0].paths[1]: \"spec..image\" an empty field name (a leading or doubled `.`)"
    );
    assert_eq!(
        refused(json!([{"group": "g", "kind": "K", "paths": ["[*].image"]}])),
        "imageLocations[0].paths[0]: \"[*].image\" starts with [*], but an object is never a list"
    );
    assert_eq!(
        refused(json!([{"group": "g", "kind": "K", "paths": []}])),
        "imageLocations[0].paths: must list at least one path"
    );
    assert_eq!(
        refused(json!([{"group": "g", "kind": "K", "paths": ["spec.image", "spec[\"image\"]"]}])),
        "imageLocations[0].paths[1]: the same path as paths[0]"
    );
    assert_eq!(
        refused(json!([{"group": "g", "kind": "", "paths": ["spec.image"]}])),
        "imageLocations[0].kind: must not be empty"
    );
    assert_eq!(
        refused(json!([
            {"group": "g", "kind": "K", "paths": ["spec.a"]},
            {"group": "h", "kind": "K", "paths": ["spec.a"]},
            {"group": "g", "kind": "K", "paths": ["spec.b"]},
        ])),
        "imageLocations[2]: g/K is named twice (also imageLocations[0]); list all its paths in one entry"
    );
}
