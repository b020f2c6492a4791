/**
 * The demo routes as data: each `GET /demo/<name>` runs its commands through agentsh (at once,
 * unless they build on each other) and reports each result, in the table's order, next to the
 * outcome we expect from the policy bundle in `agentsh/`. The end-to-end suite checks these
 * same expectations against a real agentsh.
 */

/**
 * - `allowed`: agentsh lets it run (it may still fail on its own, e.g. a network error).
 * - `blocked`: agentsh denies it and names the rule.
 * - `denied`: the kernel refuses it (Landlock); agentsh records no rule, so the command just fails.
 */
export type Expectation = "allowed" | "blocked" | "denied";

export interface DemoScenario {
  command: string;
  expect: Expectation;
  /** For `blocked`: the policy rule (agentsh/policies/default.yaml) expected to stop it. */
  rule?: string;
}

export interface DemoRoute {
  name: string;
  description: string;
  /** Extra explanation returned with the results (v0's `/demo/dlp` shape). */
  note?: string;
  /** Include the service's own health report (agentsh, enforcement checks, bundle). */
  includeServiceStatus?: boolean;
  /**
   * Put the service's installation report (`agentsh --version`, `agentsh detect`, run by the
   * service itself at boot, outside the sandbox) before the governed results.
   */
  includeInstallationReport?: boolean;
  /** The commands build on each other (a file written, then read): run them in order. */
  sequential?: boolean;
  scenarios: DemoScenario[];
}

const allow = (command: string): DemoScenario => ({ command, expect: "allowed" });
const block = (rule: string, command: string): DemoScenario => ({
  command,
  expect: "blocked",
  rule,
});
const deny = (command: string): DemoScenario => ({ command, expect: "denied" });
const curl = (url: string, headers = "") =>
  `curl -s --max-time 3 ${headers ? `${headers} ` : ""}${url}`;
/**
 * A dev server the command starts itself on an unprivileged loopback port (1024-32767 or
 * 61000-65535, outside the ephemeral range where agentsh's proxies listen), then
 * reaches through agentsh's proxy (allow-loopback-dev-servers). curl retries until the server is
 * up; the output is the HTTP status.
 */
const devServer = (port: number) =>
  `python3 -m http.server ${port} --bind 127.0.0.1 >/dev/null 2>&1 & curl -s --max-time 3 --retry 20 --retry-delay 1 --retry-all-errors -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:${port}/`;

export const demoRoutes: readonly DemoRoute[] = [
  {
    name: "status",
    description:
      "agentsh installation (version, detect), kernel, enforcement state, and agentsh self-protection.",
    includeServiceStatus: true,
    includeInstallationReport: true,
    note: "Entries with ranBy 'service' (agentsh --version, agentsh detect) were run by this service itself at boot, outside the sandbox; agentsh detect scores what the kernel can do, not what the bundle turns on. All other entries are governed commands. `service` is the live health report, including the canary commands that proved enforcement. Governed commands may not run the agentsh CLI, so they cannot drive the agentsh server.",
    scenarios: [
      allow("uname -r"),
      allow("id -un"),
      block("default-deny-execve", "agentsh session list"),
    ],
  },
  {
    name: "allowed",
    description: "Everyday commands that the policy allows.",
    scenarios: [allow("whoami"), allow("pwd"), allow("ls /workspace"), allow('echo "hello world"')],
  },
  {
    name: "blocked",
    description: "Network tools and cloud metadata, denied by policy.",
    scenarios: [
      block("deny-network-tools", "nc -h"),
      block("deny-network-tools", "nmap --version"),
      block("deny-cloud-metadata", curl("http://169.254.169.254/latest/meta-data/")),
    ],
  },
  {
    name: "commands",
    description: "Command rules: privilege, remote-access, network and process-control tools.",
    scenarios: [
      block("deny-privilege-escalation", "sudo whoami"),
      block("deny-privilege-escalation", "su -c whoami"),
      block("deny-network-tools", "ssh -V"),
      block("deny-network-tools", "scp --help"),
      block("deny-network-tools", "nc -h"),
      block("deny-network-tools", "nmap --version"),
      block("deny-system-admin", "mount /dev/sda1 /mnt"),
      block("deny-process-control", "pkill -9 bash"),
      allow('echo "this is allowed"'),
    ],
  },
  {
    name: "privilege-escalation",
    description: "Attempts to gain root powers or read credentials.",
    scenarios: [
      block("deny-privilege-escalation", "sudo whoami"),
      block("deny-privilege-escalation", "su - root -c whoami"),
      block("deny-sensitive-files", "cat /etc/shadow"),
      block("deny-sensitive-files", "echo test >> /etc/sudoers"),
      block("deny-privilege-escalation", "chroot / /bin/bash -c whoami"),
      block("deny-privilege-escalation", "nsenter -t 1 -m -u -i -n -p -- /bin/bash"),
    ],
  },
  {
    name: "filesystem",
    sequential: true,
    description: "Workspace is writable; system paths are read-only; symlinks cannot escape.",
    scenarios: [
      allow("echo testdata > /workspace/demo-test.txt"),
      allow("cat /workspace/demo-test.txt"),
      allow("cat /etc/hostname"),
      block("deny-system-write", "echo test > /etc/test.txt"),
      block("deny-system-write", "echo test > /usr/bin/test"),
      block("deny-system-write", "mkdir /etc/testdir"),
      block("deny-system-write", "cp /etc/hostname /etc/hostname.bak"),
      deny(
        "rm -f /workspace/shadow-link && ln -s /etc/shadow /workspace/shadow-link && cat /workspace/shadow-link",
      ),
    ],
  },
  {
    name: "cloud-metadata",
    description: "Instance metadata endpoints of six clouds (credential theft).",
    scenarios: [
      block("deny-cloud-metadata", curl("http://169.254.169.254/latest/meta-data/")),
      block(
        "deny-cloud-metadata",
        curl("http://metadata.google.internal/computeMetadata/v1/", '-H "Metadata-Flavor: Google"'),
      ),
      block(
        "deny-cloud-metadata",
        curl(
          '"http://169.254.169.254/metadata/instance?api-version=2021-02-01"',
          '-H "Metadata: true"',
        ),
      ),
      block("deny-cloud-metadata", curl("http://169.254.169.254/metadata/v1/")),
      block("deny-cloud-metadata", curl("http://100.100.100.200/latest/meta-data/")),
      block("deny-cloud-metadata", curl("http://169.254.169.254/opc/v2/instance/")),
    ],
  },
  {
    name: "ssrf",
    description:
      "Private ranges, link-local and the agentsh server itself blocked; a loopback dev server and public HTTPS allowed.",
    scenarios: [
      block("deny-private-networks", curl("http://10.0.0.1/")),
      block("deny-private-networks", curl("http://10.255.255.255/")),
      block("deny-private-networks", curl("http://172.16.0.1/")),
      block("deny-private-networks", curl("http://172.31.255.255/")),
      block("deny-private-networks", curl("http://192.168.0.1/")),
      block("deny-private-networks", curl("http://192.168.255.255/")),
      block("deny-private-networks", curl("http://169.254.0.1/")),
      // Loopback by port: a dev server the command started is reachable, agentsh's API is not.
      allow(devServer(3000)),
      block("deny-agentsh-api", curl("http://127.0.0.1:18080/health")),
      allow(`${curl("https://registry.npmjs.org/express")} | head -c 100`),
    ],
  },
  {
    name: "dlp",
    description:
      "DLP: secrets in command output (API keys, tokens, emails, phone numbers) are redacted before the response leaves the service.",
    note: "The service redacts command output with the DLP patterns of the policy bundle. agentsh's own DLP covers only its LLM proxy (switched off in this bundle: it forwarded outside the network rules), never command output.",
    scenarios: [
      allow('echo "OpenAI key: sk-1234567890abcdef1234567890abcdef1234567890abcdefgh"'),
      allow('echo "AWS key: AKIAIOSFODNN7EXAMPLE"'),
      allow('echo "GitHub token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'),
      allow('echo "Email: user@example.com Phone: 555-123-4567"'),
    ],
  },
  {
    name: "devtools",
    description: "Developer tools an agent needs.",
    scenarios: [
      allow("python3 --version"),
      allow("node --version"),
      allow("git --version"),
      allow("curl --version | head -1"),
      allow("pip3 --version"),
      allow('echo "hello world" | grep hello'),
    ],
  },
  {
    name: "network",
    description:
      "Domain and address filtering: malicious domains, private IPs, metadata, agentsh's API blocked; a loopback dev server and registries allowed.",
    scenarios: [
      block("deny-malicious-domains", curl("http://evil.com")),
      block("deny-private-networks", curl("http://10.0.0.1")),
      block("deny-cloud-metadata", curl("http://169.254.169.254")),
      allow(devServer(3001)),
      block("deny-agentsh-api", curl("http://127.0.0.1:18080/health")),
      allow(`${curl("https://registry.npmjs.org/express")} | head -c 100`),
    ],
  },
];
