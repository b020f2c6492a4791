import { chmod, chown, mkdir } from "node:fs/promises";
import type { Tenant } from "./tenants.js";

/**
 * Creates each tenant's workspace like the shared one (scripts/boot): owned by root and the
 * commands' group, setgid and group-writable, nothing for others. Only the launcher's Landlock
 * grant decides which tenant's commands reach it (a command is granted its tenant's alone).
 */
export async function prepareTenantWorkspaces(
  tenants: readonly Tenant[],
  gid: number | undefined,
): Promise<void> {
  for (const tenant of tenants) {
    await mkdir(tenant.workspaceRoot, { recursive: true });
    if (gid !== undefined) await chown(tenant.workspaceRoot, 0, gid);
    await chmod(tenant.workspaceRoot, 0o2770);
  }
}
