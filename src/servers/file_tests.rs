//! Reading configuration files: both layouts, per-server keys, refusals.

use std::io::Write;
use std::time::Duration;

use super::file::load;
use crate::config::{Config, Isolation, Restart};

fn file(ext: &str, text: &str) -> tempfile_like::Temp {
    tempfile_like::Temp::new(ext, text)
}

/// A file removed on drop (no extra dependency for one helper).
mod tempfile_like {
    pub struct Temp(pub std::path::PathBuf);
    impl Temp {
        pub fn new(ext: &str, text: &str) -> Temp {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("bridge-config-{}-{n}.{ext}", std::process::id()));
            let mut f = std::fs::File::create(&path).unwrap();
            super::Write::write_all(&mut f, text.as_bytes()).unwrap();
            Temp(path)
        }
    }
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn toml_tables_set_every_per_server_key() {
    let f = file(
        "toml",
        r#"
[servers.files]
command = "files-server"
args = ["--root", "/srv"]
env = { TOKEN = "t" }
cwd = "/tmp"
isolation = "session"
max-children = 3
header-env = { "X-Key" = "KEY" }
restart = "always"
request-timeout = "30s"
child-concurrency = 2
allow = ["read_*"]
deny = ["read_secret"]
default = true

[servers.db]
command = "db-server"
pool = 2
"#,
    );
    let servers = load(&f.0, &Config::new("", Vec::<String>::new())).unwrap();
    let files = &servers["files"];
    assert!(files.table.default);
    let c = &files.config;
    assert_eq!(
        (c.name.as_str(), c.command.to_str()),
        ("files", Some("files-server"))
    );
    assert_eq!(c.args, ["--root", "/srv"]);
    assert_eq!(c.env, [("TOKEN".to_owned(), "t".to_owned())]);
    assert_eq!(c.supervision.isolation, Isolation::Session);
    assert_eq!(
        (c.supervision.max_children, c.supervision.restart),
        (3, Restart::Always)
    );
    assert_eq!(
        c.supervision.header_env,
        [("x-key".to_owned(), "KEY".to_owned())]
    );
    assert_eq!(c.request_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.limits.child_concurrency, 2);
    assert!(c.tools.allows("read_file") && !c.tools.allows("read_secret"));
    assert_eq!(c.mcp_path.as_deref(), Some("/servers/files/mcp"));
    assert_eq!(c.sse_path.as_deref(), Some("/servers/files/sse"));
    let db = &servers["db"].config;
    assert_eq!(
        (db.supervision.pool, db.supervision.isolation),
        (2, Isolation::Shared)
    );
    assert!(!servers["db"].table.default);
}

#[test]
fn desktop_json_layout_is_read_and_remote_entries_skipped() {
    let f = file(
        "json",
        r#"{
  "mcpServers": {
    "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"], "env": {"A": "1"}},
    "remote": {"url": "https://example.com/mcp"},
    "off": {"command": "x", "disabled": true}
  }
}"#,
    );
    let servers = load(&f.0, &Config::new("", Vec::<String>::new())).unwrap();
    assert_eq!(servers.keys().collect::<Vec<_>>(), ["memory"]);
    let c = &servers["memory"].config;
    assert_eq!(c.command.to_str(), Some("npx"));
    assert_eq!(c.args, ["-y", "@modelcontextprotocol/server-memory"]);
    assert_eq!(c.env, [("A".to_owned(), "1".to_owned())]);
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let base = Config::new("", Vec::<String>::new());
    for (text, why) in [
        ("[servers.a]\ncommand = \"x\"\nbogus = 1\n", "bogus"),
        ("[servers.\"a/b\"]\ncommand = \"x\"\n", "names may hold"),
        ("[servers.a]\ncommand = \"x\"\ndefault = true\n[servers.b]\ncommand = \"y\"\ndefault = true\n", "default"),
        ("[servers.a]\ncommand = \"x\"\nisolation = \"session\"\npool = 2\n", "pool"),
        ("[servers.a]\ncommand = \"x\"\nrequest-timeout = \"10\"\n", "request-timeout"),
        ("[servers]\n", "no servers"),
        ("[servers.a]\ncommand = \"x\"\nisolation = \"user\"\n", "needs users"),
        ("[servers.a]\ncommand = \"x\"\nisolation = \"session\"\nheader-env = { Authorization = \"T\" }\n", "Authorization"),
    ] {
        let f = file("toml", text);
        let err = load(&f.0, &base).unwrap_err();
        assert!(err.contains(why), "{text:?}: {err}");
    }
}

#[test]
fn relative_paths_are_the_files_neighbours() {
    let env = file("env", "# a comment\nFROM_FILE=yes\n");
    let env_name = env.0.file_name().unwrap().to_str().unwrap().to_owned();
    let f = file(
        "toml",
        &format!("[servers.a]\ncommand = \"x\"\nenv-file = {env_name:?}\ncwd = \"work\"\nenv = {{ B = \"2\" }}\n"),
    );
    let servers = load(&f.0, &Config::new("", Vec::<String>::new())).unwrap();
    let c = &servers["a"].config;
    assert_eq!(
        c.env,
        [
            ("FROM_FILE".to_owned(), "yes".to_owned()),
            ("B".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(
        c.cwd.as_deref(),
        Some(std::env::temp_dir().join("work").as_path())
    );
}
