//! Realistic admission requests: Deployments as an API server hands them to a webhook after
//! `kubectl apply`, with the fields that make real objects large (args, env, ports, probes,
//! resources, securityContext, volumeMounts, the last-applied annotation and managedFields),
//! about 2 KB per container. A policy that reads only images must skip all of it.

use serde_json::{json, Map, Value};

const ENV_VARS: usize = 10;

/// A `CREATE` AdmissionRequest for `object`, as the API server sends it.
pub fn admission_request(object: Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let name = object["metadata"]["name"].clone();
    let namespace = object["metadata"]["namespace"].clone();
    let gvk = json!({"group": "apps", "version": "v1", "kind": kind});
    let resource = json!({"group": "apps", "version": "v1", "resource": "deployments"});
    json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": gvk,
        "resource": resource,
        "requestKind": gvk,
        "requestResource": resource,
        "name": name,
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {
            "username": "system:serviceaccount:argocd:argocd-application-controller",
            "uid": "0b4a7e0e-5c2f-4e4f-9a57-3c2a4f1d9e11",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"],
        },
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"},
    })
}

/// A Deployment whose container `i` runs `images[i]`.
pub fn deployment(name: &str, images: &[String]) -> Value {
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": format!("{name}-prod"),
        "app.kubernetes.io/version": "1.4.2",
        "app.kubernetes.io/part-of": "storefront",
        "app.kubernetes.io/managed-by": "argocd",
    });
    let applied = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": images.iter().enumerate().map(|(i, image)| container(i, image)).collect::<Vec<_>>(),
                    "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    });
    let mut object = applied.clone();
    object["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": applied.to_string(),
        "deployment.kubernetes.io/revision": "7",
    });
    object["metadata"]["uid"] = json!("3f2b1c9a-8d7e-4f6a-b5c4-d3e2f1a0b9c8");
    object["metadata"]["generation"] = json!(7);
    object["metadata"]["creationTimestamp"] = json!("2024-05-14T09:12:44Z");
    object["metadata"]["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2024-05-14T09:12:44Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": managed_containers(images.len())}}}},
    }]);
    object["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    object
}

fn container(i: usize, image: &str) -> Value {
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 8080}, "periodSeconds": 10});
    let env: Vec<Value> = (0..ENV_VARS)
        .map(|n| match n {
            0 => json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
            _ => json!({"name": format!("ENV_{n}"), "value": format!("v{n}")}),
        })
        .collect();
    json!({
        "name": format!("c{i}"),
        "image": image,
        "args": ["--port=8080", "-v=2"],
        "env": env,
        "ports": [{"containerPort": 8080}],
        "livenessProbe": probe("/healthz"),
        "readinessProbe": probe("/ready"),
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
    })
}

/// The `fieldsV1` of the containers, one `k:{"name":..}` entry per container.
fn managed_containers(count: usize) -> Value {
    let fields: Map<String, Value> = (0..count)
        .map(|i| {
            let entry = json!({
                ".": {}, "f:env": {}, "f:image": {}, "f:name": {}, "f:ports": {},
                "f:resources": {}, "f:securityContext": {},
            });
            (format!("k:{{\"name\":\"c{i}\"}}"), entry)
        })
        .collect();
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_two_kilobytes_per_container() {
        let images: Vec<String> = (0..50)
            .map(|n| format!("127.0.0.1:5000/bench/image-{n:02}:v1"))
            .collect();
        let size = |count: usize| deployment("app", &images[..count]).to_string().len();
        let per_container = (size(50) - size(1)) / 49;
        assert!((1900..=2300).contains(&per_container), "{per_container}");
        assert!((95_000..=115_000).contains(&size(50)), "{}", size(50));
    }
}
