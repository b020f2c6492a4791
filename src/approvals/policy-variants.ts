/**
 * Approval-class rules (command rules named `approval-…`) are enforced denies in the default
 * policy. For each one the bundle holds a variant policy, `approved-<rest>.yaml`, identical to
 * `default.yaml` except that this one rule allows: an approved command runs in an agentsh session
 * created with it, so agentsh itself still enforces everything else (nested execs, files, unix
 * sockets use the session's policy). The variants are generated text, checked by a test.
 */

export const APPROVAL_RULE_PREFIX = "approval-";

/** Whether a rule name is of the approval class. */
export function isApprovalRule(rule: string | null | undefined): rule is string {
  return typeof rule === "string" && rule.startsWith(APPROVAL_RULE_PREFIX) && rule.length > 9;
}

/** The agentsh policy name (file `<name>.yaml` in policies.dir) that allows `rule` only. */
export function approvedPolicyName(rule: string): string {
  return `approved-${rule.slice(APPROVAL_RULE_PREFIX.length)}`;
}

/** The approval-class command rule names in a policy's text, in file order. */
export function approvalRuleNames(policyText: string): string[] {
  return [...policyText.matchAll(/^ {2}- name: (approval-[A-Za-z0-9_-]+)\s*$/gm)].map(
    (match) => match[1] as string,
  );
}

/**
 * The variant of `policyText` in which `rule` allows: the rule's `decision: deny` line becomes
 * `decision: allow` and a header says where it came from. Throws when the rule is not there or
 * does not deny.
 */
export function approvedPolicyText(policyText: string, rule: string): string {
  const lines = policyText.split("\n");
  const start = lines.findIndex((line) => line.trimEnd() === `  - name: ${rule}`);
  if (start === -1) throw new Error(`no command rule named ${rule}`);
  let at = -1;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^ {2}- name: /.test(line) || /^\S/.test(line)) break;
    if (/^ {4}decision: /.test(line)) {
      at = i;
      break;
    }
  }
  if (at === -1 || lines[at]?.trim() !== "decision: deny") {
    throw new Error(`rule ${rule} must have decision: deny in the default policy`);
  }
  lines[at] = "    decision: allow";
  const header = [
    `# GENERATED from default.yaml by tools/approval-policies.ts: do not edit.`,
    `# The policy of an agentsh session that runs one approved command: ${rule} allows,`,
    "# every other rule is the default policy's.",
  ];
  return [...header, ...lines].join("\n");
}
