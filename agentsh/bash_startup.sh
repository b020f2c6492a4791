# Governed-executor bash startup file.
#
# agentsh injects BASH_ENV pointing here (config.yaml sandbox.env_inject), so
# every non-interactive bash that a governed command starts sources this file
# before running its own code.
#
# Why: builtins never call execve, so agentsh's command rules cannot see them.
# `kill -9 1` inside `bash -c` would reach the kernel without a policy check.
# We switch off the builtins that can signal processes, change limits/umask, or
# reach a disabled builtin again (`builtin x`, `command x`, `enable x`).
# After this, `kill` resolves to /usr/bin/kill, which the command rules deny.
#
# This is a speed bump, not a boundary: `bash -p`, `env -u BASH_ENV bash`,
# dash (`sh -c`) and interpreters (python3 os.kill) do not read this file,
# and agentsh 0.16.9 has no working signal policy to back it up (see
# policies/default.yaml).
#
# Keep `enable` last in the list: once it is disabled nothing can re-enable.
enable -n kill ulimit umask builtin command enable
