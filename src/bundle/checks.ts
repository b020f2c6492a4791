import type { PolicyBundle } from "./load-bundle.js";

/** What the bundle and the installation promise, before any command is run. */
export function staticEnforcementChecks(
  bundle: PolicyBundle,
  installed: { agentsh: boolean; unixwrap: boolean },
): Record<string, boolean> {
  return {
    "agentsh CLI installed": installed.agentsh,
    "seccomp helper agentsh-unixwrap installed": installed.unixwrap,
    "landlock enabled in bundle": bundle.enforcement.landlock,
    "seccomp helper enabled in bundle": bundle.enforcement.seccompHelper,
    "nested execve interception enabled": bundle.enforcement.execveInterception,
    "seccomp file monitor enabled": bundle.enforcement.fileMonitor,
  };
}
