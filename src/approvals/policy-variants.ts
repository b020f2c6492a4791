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

/**
 * Network approvals (NETWORK_APPROVALS=true): agentsh's proxy holds a connection whose rule
 * decides `approve` until a person answers through agentsh's approvals API (approvals.mode api).
 * The proxy judges every session with the server's default policy, so this variant is started as
 * agentsh's default (AGENTSH_POLICY_NAME): default.yaml with its last allow, `allow-https`
 * (HTTPS to any destination no rule above names), turned into the rule below. Everything a rule
 * above names is unchanged: the allow-lists still allow, the deny rules (metadata, private
 * networks, known-bad domains, loopback ports) still deny without asking anyone.
 */
export const NETWORK_APPROVALS_POLICY = "network-approvals";

/**
 * The network-approvals variant of a policy: `network-approvals` for the default one, and
 * `<policy>-network-approvals` for a tenant policy (its own agentsh server starts with it).
 */
export function networkApprovalsPolicyName(policy: string, defaultPolicy = "default"): string {
  return policy === defaultPolicy
    ? NETWORK_APPROVALS_POLICY
    : `${policy}-${NETWORK_APPROVALS_POLICY}`;
}

/** Policy files written by hand (not generated variants): each gets a network-approvals one. */
export function isHandWrittenPolicy(name: string): boolean {
  return !name.startsWith("approved-") && !name.endsWith(NETWORK_APPROVALS_POLICY);
}
export const NETWORK_APPROVAL_RULE = "network-approval-unlisted";
const UNLISTED_HTTPS_RULE = "allow-https";

/** The network-approvals variant of `policyText`; throws unless it has `allow-https` as expected. */
export function networkApprovalPolicyText(policyText: string, from = "default.yaml"): string {
  const lines = policyText.split("\n");
  const start = lines.findIndex((line) => line.trimEnd() === `  - name: ${UNLISTED_HTTPS_RULE}`);
  if (start === -1) throw new Error(`no network rule named ${UNLISTED_HTTPS_RULE}`);
  let end = start + 1;
  while (end < lines.length && /^ {4}\S/.test(lines[end] as string)) end++;
  const rule = lines.slice(start, end).map((line) => line.trim());
  if (!rule.includes("ports: [443]") || !rule.includes("decision: allow")) {
    throw new Error(`${UNLISTED_HTTPS_RULE} must allow ports: [443] in the default policy`);
  }
  lines.splice(
    start,
    end - start,
    `  - name: ${NETWORK_APPROVAL_RULE}`,
    "    description: >-",
    "      HTTPS to a destination no rule above names: agentsh's proxy holds the",
    "      connection until a person decides (GET/POST /approvals); nobody within",
    "      approvals.timeout (config.yaml) = denied.",
    "    ports: [443]",
    "    decision: approve",
    "    message: The destination is not on the allow-list; a person has been asked to approve it.",
  );
  const header = [
    `# GENERATED from ${from} by tools/approval-policies.ts: do not edit.`,
    `# Its agentsh server's policy when NETWORK_APPROVALS=true: ${UNLISTED_HTTPS_RULE} becomes`,
    `# ${NETWORK_APPROVAL_RULE} (decision approve); every other rule is ${from}'s.`,
  ];
  return [...header, ...lines].join("\n");
}
