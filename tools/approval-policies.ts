/**
 * Writes agentsh/policies/approved-<rule>.yaml for every approval-class rule of
 * agentsh/policies/default.yaml, and network-approvals.yaml, agentsh's default policy when
 * NETWORK_APPROVALS=true (see src/approvals/policy-variants.ts). Run after editing the policy: `node --import tsx tools/approval-policies.ts`; a unit test fails while they differ.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  approvalRuleNames,
  approvedPolicyName,
  approvedPolicyText,
  NETWORK_APPROVALS_POLICY,
  networkApprovalPolicyText,
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
const network = `${NETWORK_APPROVALS_POLICY}.yaml`;
writeFileSync(path.join(dir, network), networkApprovalPolicyText(text));
console.log([...wanted, network].join("\n"));
