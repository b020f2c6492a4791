/**
 * Writes agentsh/policies/approved-<rule>.yaml for every approval-class rule of
 * agentsh/policies/default.yaml, and a network-approvals variant of every hand-written policy
 * (network-approvals.yaml for the default, <policy>-network-approvals.yaml for the others): its
 * agentsh server's policy when NETWORK_APPROVALS=true (see src/approvals/policy-variants.ts). Run after editing the policy: `node --import tsx tools/approval-policies.ts`; a unit test fails while they differ.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  approvalRuleNames,
  approvedPolicyName,
  approvedPolicyText,
  isHandWrittenPolicy,
  NETWORK_APPROVALS_POLICY,
  networkApprovalPolicyText,
  networkApprovalsPolicyName,
} from "../src/approvals/policy-variants.js";

const dir = path.join(import.meta.dirname, "..", "agentsh", "policies");
const text = readFileSync(path.join(dir, "default.yaml"), "utf8");
const wanted = new Set<string>();
for (const rule of approvalRuleNames(text)) {
  const file = `${approvedPolicyName(rule)}.yaml`;
  wanted.add(file);
  writeFileSync(path.join(dir, file), approvedPolicyText(text, rule));
}
for (const file of readdirSync(dir)) {
  if (file.startsWith("approved-") && !wanted.has(file)) rmSync(path.join(dir, file));
}
// A network-approvals variant of every hand-written policy: the default's is agentsh's default
// server's policy with NETWORK_APPROVALS=true, a tenant policy's that of its own server.
for (const file of readdirSync(dir)) {
  const name = file.replace(/\.yaml$/, "");
  if (!file.endsWith(".yaml") || !isHandWrittenPolicy(name)) continue;
  const variant = `${networkApprovalsPolicyName(name)}.yaml`;
  writeFileSync(
    path.join(dir, variant),
    networkApprovalPolicyText(readFileSync(path.join(dir, file), "utf8"), file),
  );
  wanted.add(variant);
}
for (const file of readdirSync(dir)) {
  if (file.endsWith(`${NETWORK_APPROVALS_POLICY}.yaml`) && !wanted.has(file)) {
    rmSync(path.join(dir, file));
  }
}
console.log([...wanted].join("\n"));
