import type { IsolationSettings } from "../../src/bundle/isolation-schema.js";

/** A small isolation.yaml for unit tests (two identities, two bind ports). */
export const TEST_ISOLATION: IsolationSettings = {
  version: 1,
  identities: {
    uid_drop: "when-permitted",
    group: "gexec",
    gid: 47000,
    user_prefix: "gexec-",
    first_uid: 47001,
    count: 2,
    umask: "007",
    scratch_root: "/home/gexec",
    client_uid: 65534,
  },
  filesystem: { sessions_root: "/sessions", withhold: { read: ["/proc"], write: [] } },
  limits: {
    memory_mb: 384,
    processes: 256,
    cpu_percent: 100,
    cpu_seconds: 330,
    file_size_mb: 1024,
    open_files: 4096,
    disk_mb: { session: 2048, workspace: 4096 },
    headroom_mb: 512,
  },
  network: { bind_tcp_ports: [{ lo: 8000, hi: 8001 }], udp: false, netlink_route: true },
};
