//! Runs a Kubewarden waPC policy the way policy-server does.
