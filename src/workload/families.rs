//! Where the images of the built-in families lie outside pod specs, as paths
//! ([`Shape`]s) from the object's root:
//!
//! - Tekton (`tekton.dev`): the steps, sidecars and step template of a Task, ClusterTask
//!   and StepAction; of a TaskRun's inline `taskSpec`; of every inline task of a Pipeline
//!   and of a PipelineRun's inline `pipelineSpec`, `finally` tasks and nested pipelines
//!   included;
//! - Argo Workflows (`argoproj.io`): every template of a Workflow, WorkflowTemplate,
//!   ClusterWorkflowTemplate and CronWorkflow (container, script, init containers,
//!   sidecars, container set, the template defaults, and templates inlined in steps and DAG
//!   tasks);
//! - KubeVirt (`kubevirt.io`): the containerDisk volumes and the kernel boot container of a
//!   VirtualMachineInstance, and of the template of a VirtualMachine and a
//!   VirtualMachineInstanceReplicaSet.

use std::borrow::Cow;

use super::kind::KindRef;
use super::path::{Shape, Step};

const fn f(name: &'static str) -> Step {
    Step::Field(Cow::Borrowed(name))
}

const EACH: Step = Step::Each;

static TEKTON_TASK_SPEC: Shape = Shape(&[
    &[f("steps"), EACH, f("image")],
    &[f("sidecars"), EACH, f("image")],
    &[f("stepTemplate"), f("image")],
]);
/// A pipeline task, in `tasks` or `finally`: its task or pipeline may be inline.
static TEKTON_PIPELINE_TASK: Shape = Shape(&[
    &[f("taskSpec"), Step::Shape(&TEKTON_TASK_SPEC)],
    &[f("pipelineSpec"), Step::Shape(&TEKTON_PIPELINE_SPEC)],
]);
static TEKTON_PIPELINE_SPEC: Shape = Shape(&[
    &[f("tasks"), EACH, Step::Shape(&TEKTON_PIPELINE_TASK)],
    &[f("finally"), EACH, Step::Shape(&TEKTON_PIPELINE_TASK)],
]);
static TEKTON_TASK: Shape = Shape(&[&[f("spec"), Step::Shape(&TEKTON_TASK_SPEC)]]);
static TEKTON_TASK_RUN: Shape =
    Shape(&[&[f("spec"), f("taskSpec"), Step::Shape(&TEKTON_TASK_SPEC)]]);
static TEKTON_PIPELINE: Shape = Shape(&[&[f("spec"), Step::Shape(&TEKTON_PIPELINE_SPEC)]]);
static TEKTON_PIPELINE_RUN: Shape = Shape(&[&[
    f("spec"),
    f("pipelineSpec"),
    Step::Shape(&TEKTON_PIPELINE_SPEC),
]]);
static TEKTON_STEP_ACTION: Shape = Shape(&[&[f("spec"), f("image")]]);

static ARGO_TEMPLATE: Shape = Shape(&[
    &[f("container"), f("image")],
    &[f("script"), f("image")],
    &[f("initContainers"), EACH, f("image")],
    &[f("sidecars"), EACH, f("image")],
    &[f("containerSet"), f("containers"), EACH, f("image")],
    // Templates written inline in a step (a list of parallel steps) or a DAG task.
    &[
        f("steps"),
        EACH,
        EACH,
        f("inline"),
        Step::Shape(&ARGO_TEMPLATE),
    ],
    &[
        f("dag"),
        f("tasks"),
        EACH,
        f("inline"),
        Step::Shape(&ARGO_TEMPLATE),
    ],
]);
static ARGO_WORKFLOW_SPEC: Shape = Shape(&[
    &[f("templates"), EACH, Step::Shape(&ARGO_TEMPLATE)],
    &[f("templateDefaults"), Step::Shape(&ARGO_TEMPLATE)],
]);
static ARGO_WORKFLOW: Shape = Shape(&[&[f("spec"), Step::Shape(&ARGO_WORKFLOW_SPEC)]]);
static ARGO_CRON_WORKFLOW: Shape = Shape(&[&[
    f("spec"),
    f("workflowSpec"),
    Step::Shape(&ARGO_WORKFLOW_SPEC),
]]);

static KUBEVIRT_VMI_SPEC: Shape = Shape(&[
    &[f("volumes"), EACH, f("containerDisk"), f("image")],
    &[
        f("domain"),
        f("firmware"),
        f("kernelBoot"),
        f("container"),
        f("image"),
    ],
]);
static KUBEVIRT_VMI: Shape = Shape(&[&[f("spec"), Step::Shape(&KUBEVIRT_VMI_SPEC)]]);
static KUBEVIRT_TEMPLATED: Shape = Shape(&[&[
    f("spec"),
    f("template"),
    f("spec"),
    Step::Shape(&KUBEVIRT_VMI_SPEC),
]]);

/// The paths of `kind`'s family, if it is one of the built-in kinds.
pub fn shape(kind: KindRef<'_>) -> Option<&'static Shape> {
    Some(match (kind.group, kind.kind) {
        ("tekton.dev", "Task" | "ClusterTask") => &TEKTON_TASK,
        ("tekton.dev", "TaskRun") => &TEKTON_TASK_RUN,
        ("tekton.dev", "Pipeline") => &TEKTON_PIPELINE,
        ("tekton.dev", "PipelineRun") => &TEKTON_PIPELINE_RUN,
        ("tekton.dev", "StepAction") => &TEKTON_STEP_ACTION,
        ("argoproj.io", "Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate") => {
            &ARGO_WORKFLOW
        }
        ("argoproj.io", "CronWorkflow") => &ARGO_CRON_WORKFLOW,
        ("kubevirt.io", "VirtualMachineInstance") => &KUBEVIRT_VMI,
        ("kubevirt.io", "VirtualMachine" | "VirtualMachineInstanceReplicaSet") => {
            &KUBEVIRT_TEMPLATED
        }
        _ => return None,
    })
}
