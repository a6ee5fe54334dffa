//! Rendered charts as `helm template` prints them, for check-manifests' bench and demo: one
//! YAML document per template, each after a `# Source: CHART/templates/FILE` comment, with
//! the fields real charts carry (labels, probes, resources, a security context).

/// A chart's rendered templates: `(template file, YAML document)`.
pub struct Chart {
    pub name: String,
    pub templates: Vec<(String, String)>,
}

impl Chart {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            templates: Vec::new(),
        }
    }

    pub fn with(mut self, template: &str, document: String) -> Self {
        self.templates.push((template.to_owned(), document));
        self
    }

    /// The chart as `helm template` writes it.
    pub fn render(&self) -> String {
        self.templates
            .iter()
            .map(|(template, document)| {
                format!(
                    "---\n# Source: {}/templates/{template}\n{document}",
                    self.name
                )
            })
            .collect()
    }

    /// How many objects it holds.
    pub fn objects(&self) -> usize {
        self.templates.len()
    }
}

fn labels(name: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}app.kubernetes.io/name: {name}\n{pad}app.kubernetes.io/instance: release\n{pad}app.kubernetes.io/version: \"1.4.2\"\n{pad}app.kubernetes.io/managed-by: Helm\n"
    )
}

fn container(name: &str, image: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}- name: {name}
{pad}  image: \"{image}\"
{pad}  imagePullPolicy: IfNotPresent
{pad}  args: [\"--port=8080\", \"--log-level=info\"]
{pad}  env:
{pad}    - name: POD_NAME
{pad}      valueFrom:
{pad}        fieldRef:
{pad}          fieldPath: metadata.name
{pad}    - name: CACHE_SIZE
{pad}      value: \"512\"
{pad}  ports:
{pad}    - name: http
{pad}      containerPort: 8080
{pad}      protocol: TCP
{pad}  livenessProbe:
{pad}    httpGet:
{pad}      path: /healthz
{pad}      port: http
{pad}  readinessProbe:
{pad}    httpGet:
{pad}      path: /ready
{pad}      port: http
{pad}  resources:
{pad}    limits:
{pad}      cpu: 500m
{pad}      memory: 256Mi
{pad}    requests:
{pad}      cpu: 100m
{pad}      memory: 128Mi
{pad}  securityContext:
{pad}    allowPrivilegeEscalation: false
{pad}    readOnlyRootFilesystem: true
{pad}    capabilities:
{pad}      drop: [\"ALL\"]
"
    )
}

/// A Deployment whose container `i` runs `images[i]`.
pub fn deployment(name: &str, images: &[&str]) -> String {
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(i, image)| container(&format!("{name}-{i}"), image, 8))
        .collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n{}spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      labels:\n{}    spec:\n      serviceAccountName: {name}\n      securityContext:\n        runAsNonRoot: true\n      containers:\n{containers}",
        labels(name, 4),
        labels(name, 8)
    )
}

/// A CronJob running `image` nightly.
pub fn cronjob(name: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  labels:\n{}spec:\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n{}",
        labels(name, 4),
        container(name, image, 12)
    )
}

pub fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels:\n{}spec:\n  type: ClusterIP\n  ports:\n    - port: 80\n      targetPort: http\n      protocol: TCP\n      name: http\n  selector:\n    app.kubernetes.io/name: {name}\n",
        labels(name, 4)
    )
}

pub fn config_map(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n{}data:\n  LOG_LEVEL: info\n  config.yaml: |\n    server:\n      port: 8080\n    cache:\n      size: 512\n",
        labels(name, 4)
    )
}
