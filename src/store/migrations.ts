/**
 * Schema migrations, in order. Migration i takes the database from user_version i to
 * i + 1 inside one transaction. Append only: never edit one that has shipped.
 */
export interface Migration {
  name: string;
  sql: string;
}

// SQLite's %f is SS.SSS: three more digits make Nova's microsecond form.
const NOW = "strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000'";

export const MIGRATIONS: Migration[] = [
  {
    name: '001 initial schema',
    sql: `
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE flavors (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  vcpus         INTEGER NOT NULL,
  ram_mib       INTEGER NOT NULL,
  disk_gib      INTEGER NOT NULL,
  swap_mib      INTEGER NOT NULL DEFAULT 0,
  ephemeral_gib INTEGER NOT NULL DEFAULT 0,
  rxtx_factor   REAL NOT NULL DEFAULT 1.0,
  is_public     INTEGER NOT NULL DEFAULT 1,
  disabled      INTEGER NOT NULL DEFAULT 0,
  extra_specs   TEXT NOT NULL DEFAULT '{}',
  created_at    TEXT NOT NULL
);

CREATE TABLE flavor_access (
  flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
  project_id TEXT NOT NULL,
  PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE servers (
  id               TEXT PRIMARY KEY,
  name             TEXT NOT NULL,
  project_id       TEXT NOT NULL,
  user_id          TEXT NOT NULL,
  image_ref        TEXT NOT NULL DEFAULT '',
  image_name       TEXT NOT NULL DEFAULT '',
  flavor_id        TEXT NOT NULL DEFAULT '',
  vm_state         TEXT NOT NULL,
  task_state       TEXT,
  power_state      INTEGER NOT NULL DEFAULT 0,
  metadata         TEXT NOT NULL DEFAULT '{}',
  key_name         TEXT,
  access_ipv4      TEXT NOT NULL DEFAULT '',
  access_ipv6      TEXT NOT NULL DEFAULT '',
  locked           INTEGER NOT NULL DEFAULT 0,
  locked_by        TEXT CHECK (locked_by IN ('owner', 'admin')),
  host             TEXT NOT NULL DEFAULT '',
  fault            TEXT,
  ephemeral        INTEGER NOT NULL DEFAULT 0,
  network          TEXT NOT NULL DEFAULT 'none',
  task_owner_pid   INTEGER,
  task_owner_start INTEGER,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  launched_at      TEXT,
  terminated_at    TEXT,
  deleted          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX servers_project ON servers(project_id);
CREATE INDEX servers_name ON servers(name);
CREATE INDEX servers_updated ON servers(updated_at);

CREATE TABLE server_runtime (
  server_id     TEXT PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
  monitor_pid   INTEGER NOT NULL,
  monitor_start INTEGER NOT NULL,
  init_pid      INTEGER NOT NULL,
  init_start    INTEGER NOT NULL,
  boot_id       TEXT NOT NULL,
  cgroup_path   TEXT NOT NULL,
  started_at    TEXT NOT NULL
);

CREATE TABLE instance_actions (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  server_id  TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
  request_id TEXT NOT NULL,
  action     TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  project_id TEXT NOT NULL,
  start_time TEXT NOT NULL,
  message    TEXT
);
CREATE INDEX instance_actions_server ON instance_actions(server_id, id);

CREATE TABLE instance_action_events (
  id          INTEGER PRIMARY KEY,
  action_id   INTEGER NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
  event       TEXT NOT NULL,
  start_time  TEXT NOT NULL,
  finish_time TEXT,
  result      TEXT CHECK (result IN ('Success', 'Error')),
  traceback   TEXT
);
CREATE INDEX instance_action_events_action ON instance_action_events(action_id);

-- Nova's default flavors, scaled for containers, plus a small one for density.
INSERT INTO flavors (id, name, vcpus, ram_mib, disk_gib, created_at) VALUES
  ('1', 'm1.tiny',   1,   512,   1, ${NOW}),
  ('2', 'm1.small',  1,  2048,  20, ${NOW}),
  ('3', 'm1.medium', 2,  4096,  40, ${NOW}),
  ('4', 'm1.large',  4,  8192,  80, ${NOW}),
  ('5', 'm1.xlarge', 8, 16384, 160, ${NOW}),
  ('6', 'c1.nano',   1,    64,   1, ${NOW});
`,
  },
  {
    // Glance-like image records over content-addressed layers (src/images/). A layer's
    // reference count is the number of image_layers rows naming it: derived, never stored.
    name: '002 images',
    sql: `
CREATE TABLE images (
  id               TEXT PRIMARY KEY,
  name             TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('queued', 'saving', 'active', 'killed', 'deleted', 'pending_delete', 'deactivated')),
  size             INTEGER,
  virtual_size     INTEGER,
  checksum         TEXT,
  os_hash_algo     TEXT,
  os_hash_value    TEXT,
  disk_format      TEXT,
  container_format TEXT,
  visibility       TEXT NOT NULL DEFAULT 'shared' CHECK (visibility IN ('public', 'private', 'shared', 'community')),
  owner            TEXT NOT NULL,
  protected        INTEGER NOT NULL DEFAULT 0,
  min_disk         INTEGER NOT NULL DEFAULT 0,
  min_ram          INTEGER NOT NULL DEFAULT 0,
  tags             TEXT NOT NULL DEFAULT '[]',
  properties       TEXT NOT NULL DEFAULT '{}',
  config           TEXT NOT NULL DEFAULT '{}',
  task_owner_pid   INTEGER,
  task_owner_start INTEGER,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL
);
-- one live image per name (novabox resolves names like podman tags); killed ones may repeat
CREATE UNIQUE INDEX images_live_name ON images(name) WHERE status IN ('queued', 'saving', 'active', 'deactivated');
CREATE INDEX images_owner ON images(owner);

CREATE TABLE layers (
  diff_id     TEXT PRIMARY KEY,
  blob_digest TEXT NOT NULL,
  media_type  TEXT NOT NULL,
  blob_size   INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  created_at  TEXT NOT NULL
);

CREATE TABLE image_layers (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  diff_id  TEXT NOT NULL REFERENCES layers(diff_id),
  PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_diff ON image_layers(diff_id);
`,
  },
  {
    name: '003 network',
    sql: `
-- IPAM of the bridge network: one fixed address per server (or run container), kept
-- across stop/start and rebuild, released on delete. The primary key makes an address
-- unique; allocation runs in BEGIN IMMEDIATE (store/leases.ts).
CREATE TABLE network_leases (
  network    TEXT NOT NULL,
  address    TEXT NOT NULL,
  mac        TEXT NOT NULL,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('server', 'container')),
  owner_id   TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (network, address),
  UNIQUE (network, owner_id)
);
CREATE INDEX network_leases_owner ON network_leases(owner_id);
`,
  },
  {
    name: '004 identity',
    sql: `
CREATE TABLE projects (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  domain_id   TEXT NOT NULL DEFAULT 'default',
  description TEXT NOT NULL DEFAULT '',
  enabled     INTEGER NOT NULL DEFAULT 1,
  created_at  TEXT NOT NULL,
  UNIQUE (domain_id, name)
);

CREATE TABLE users (
  id                 TEXT PRIMARY KEY,
  name               TEXT NOT NULL,
  domain_id          TEXT NOT NULL DEFAULT 'default',
  default_project_id TEXT,
  email              TEXT,
  description        TEXT NOT NULL DEFAULT '',
  enabled            INTEGER NOT NULL DEFAULT 1,
  password_hash      TEXT,
  created_at         TEXT NOT NULL,
  UNIQUE (domain_id, name)
);

CREATE TABLE roles (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
  created_at TEXT NOT NULL
);

CREATE TABLE role_assignments (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
  PRIMARY KEY (project_id, user_id, role_id)
);
CREATE INDEX role_assignments_user ON role_assignments(user_id);

-- Tokens are random; only their SHA-256 is stored, so the database never holds one.
CREATE TABLE tokens (
  hash       TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
  methods    TEXT NOT NULL,
  audit_id   TEXT NOT NULL,
  issued_at  TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_expires ON tokens(expires_at);

CREATE TABLE keypairs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id     TEXT NOT NULL,
  name        TEXT NOT NULL,
  type        TEXT NOT NULL DEFAULT 'ssh',
  public_key  TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  UNIQUE (user_id, name)
);

-- One row per resize (Nova's migrations on one host): what confirm and revert need, and
-- os-migrations. Flavor ids are also kept as the flavors' integer rowids, as Nova shows them.
CREATE TABLE server_migrations (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  server_id      TEXT NOT NULL,
  project_id     TEXT NOT NULL,
  kind           TEXT NOT NULL DEFAULT 'resize',
  status         TEXT NOT NULL,
  old_flavor_id  TEXT NOT NULL,
  new_flavor_id  TEXT NOT NULL,
  old_flavor_int INTEGER NOT NULL,
  new_flavor_int INTEGER NOT NULL,
  pre_vm_state   TEXT NOT NULL,
  host           TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
CREATE INDEX server_migrations_server ON server_migrations(server_id, id);

INSERT INTO roles (id, name, created_at) VALUES
  (lower(hex(randomblob(16))), 'admin',  ${NOW}),
  (lower(hex(randomblob(16))), 'member', ${NOW}),
  (lower(hex(randomblob(16))), 'reader', ${NOW});
`,
  },
  {
    // Issue 16 (the OpenStack contract): image names are free text and may repeat, as in
    // Glance; the built-in "busybox" stays unique (concurrent first uses build it once).
    name: '005 nova contract',
    sql: `
DROP INDEX images_live_name;
CREATE UNIQUE INDEX images_builtin_name ON images(name) WHERE name = 'busybox' AND status IN ('queued', 'saving', 'active', 'deactivated');
CREATE INDEX images_name ON images(name);

-- Nova keeps a copy of the flavor with the server, and both flavors with a resize: the
-- server shows, reverts and accounts its flavor after the flavor itself was deleted.
ALTER TABLE servers ADD COLUMN flavor TEXT;
ALTER TABLE server_migrations ADD COLUMN old_flavor TEXT;
ALTER TABLE server_migrations ADD COLUMN new_flavor TEXT;
CREATE INDEX servers_terminated ON servers(terminated_at);

-- Nova's server groups: a policy over the servers that join one at create
CREATE TABLE server_groups (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  project_id TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  policy     TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups(project_id);
CREATE TABLE server_group_members (
  group_id  TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
  server_id TEXT NOT NULL,
  PRIMARY KEY (group_id, server_id)
);
CREATE INDEX server_group_members_server ON server_group_members(server_id);

-- domain-scoped tokens (Keystone): the domain a token is scoped to, when not a project
ALTER TABLE tokens ADD COLUMN domain_id TEXT;
`,
  },
  {
    // Issue 15: every server in a user namespace of its own. Servers from before are
    // 'host' (root inside is root on the host) and have no range.
    name: '006 user namespaces',
    sql: `
ALTER TABLE servers ADD COLUMN userns TEXT NOT NULL DEFAULT 'host' CHECK (userns IN ('auto', 'host'));

-- A server's id range, as its lease $NOVABOX_ROOT/idmap/<slot> holds it (runtime/userns/leases.ts:
-- the link decides, this row is the server's record of it, written with the server).
CREATE TABLE idmap_leases (
  slot       INTEGER PRIMARY KEY,
  uid_base   INTEGER NOT NULL,
  gid_base   INTEGER NOT NULL,
  size       INTEGER NOT NULL,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('server', 'container')),
  owner_id   TEXT NOT NULL UNIQUE,
  nonce      TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
  {
    // Issue 20: restart policies (compute/restart.ts), applied by the server's monitor
    // (it runs `novabox server _exited` after the init's exit) and by `autostart run`.
    name: '007 restart policies',
    sql: `
ALTER TABLE servers ADD COLUMN restart TEXT NOT NULL DEFAULT 'no';
ALTER TABLE servers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    // Issue 17: instance data. Nova keeps user_data (base64, as given) and a copy of the
    // keypair's public key with the instance (deleting the keypair later changes nothing);
    // both go into the server's NoCloud seed (compute/instance-data.ts).
    name: '008 instance data',
    sql: `
ALTER TABLE servers ADD COLUMN user_data TEXT;
ALTER TABLE servers ADD COLUMN key_data TEXT;
ALTER TABLE servers ADD COLUMN config_drive INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    // Issue 20: published ports, kept with the server from create to delete (compute/ports.ts);
    // the DNAT rules are in the kernel while it runs (runtime/network/ports.ts).
    name: '009 published ports',
    sql: `
CREATE TABLE server_ports (
  server_id TEXT NOT NULL,
  protocol  TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
  host_ip   TEXT NOT NULL,
  host_port INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
  port      INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  PRIMARY KEY (protocol, host_port, host_ip)
);
CREATE INDEX server_ports_server ON server_ports(server_id);
`,
  },
  {
    // Issue 20: named volumes (compute/volumes.ts): a directory under $NOVABOX_ROOT/volumes,
    // attached to one server (or `run` container: owner_kind) at a time (Cinder's
    // non-multiattach), kept when it is deleted.
    // uid_base/gid_base: the ids its files are stored in (0, or the range of the server
    // that used it last: runtime/volumes.ts shifts them when another range takes it).
    name: '010 volumes',
    sql: `
CREATE TABLE volumes (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  project_id  TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  uid_base    INTEGER NOT NULL DEFAULT 0,
  gid_base    INTEGER NOT NULL DEFAULT 0,
  server_id   TEXT,
  owner_kind  TEXT NOT NULL DEFAULT 'server' CHECK (owner_kind IN ('server', 'container')),
  mount_path  TEXT,
  read_only   INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL,
  attached_at TEXT
);
CREATE INDEX volumes_server ON volumes(server_id);
`,
  },
  {
    // Issue 17: systemd as a server's pid 1 (a system container), chosen at create from
    // the image's os_init property or `server create --init`.
    name: '011 server init',
    sql: `
ALTER TABLE servers ADD COLUMN init TEXT NOT NULL DEFAULT 'novabox' CHECK (init IN ('novabox', 'systemd'));
`,
  },
  {
    // Issue 18: `server migrate` records its migration on the source (kind 'migration'),
    // as Nova's migration record: os-migrations lists it with the target's host.
    name: '012 migrations between hosts',
    sql: `
ALTER TABLE server_migrations ADD COLUMN dest_compute TEXT;
ALTER TABLE server_migrations ADD COLUMN dest_host TEXT;
`,
  },
  {
    // Issue 20: volume snapshots (`volume snapshot create`, Cinder's snapshots): a
    // point-in-time copy of a volume under $NOVABOX_ROOT/volume-snapshots, kept with the
    // ids its files were stored in. 'creating' until its copy is whole. A volume with
    // snapshots is not deleted (no foreign key: the refusal names them).
    name: '013 volume snapshots',
    sql: `
CREATE TABLE volume_snapshots (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  volume_id   TEXT NOT NULL,
  project_id  TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL DEFAULT 'creating' CHECK (status IN ('creating', 'available')),
  uid_base    INTEGER NOT NULL DEFAULT 0,
  gid_base    INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots(volume_id);
`,
  },
  {
    // Issue 20: a `creating` volume snapshot records the process making it (pid and start
    // time) and the server it froze for the copy, so that the next `volume` command
    // (or doctor) removes one whose CLI was killed, its partial copy, and thaws the server.
    // A volume being copied from another (`volume create --source`) or from a snapshot
    // (`--snapshot`) has no row until its copy is whole: volume_copies records it the same
    // way (its id, the process, the server frozen) while it is copied.
    name: '014 volume snapshot owner',
    sql: `
ALTER TABLE volume_snapshots ADD COLUMN owner_pid INTEGER;
ALTER TABLE volume_snapshots ADD COLUMN owner_start INTEGER;
ALTER TABLE volume_snapshots ADD COLUMN frozen_server TEXT;
CREATE TABLE volume_copies (
  volume_id     TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  source        TEXT NOT NULL,
  owner_pid     INTEGER NOT NULL,
  owner_start   INTEGER NOT NULL,
  frozen_server TEXT,
  created_at    TEXT NOT NULL
);
`,
  },
];
