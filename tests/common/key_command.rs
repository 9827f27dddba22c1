//! A key command for tests: the age-backed example (`examples/key-command/age-kms`) behind a
//! switch that makes it fail, print garbage, hang or kill itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// The switchable key command and its age identity, in a temporary directory.
pub struct KeyCommand {
    pub dir: TempDir,
    pub script: PathBuf,
}

/// Whether the `age` tool is installed (.ci/run installs it).
pub fn age_installed() -> bool {
    Command::new("age").arg("--version").output().is_ok()
}

/// The example program of the repository.
pub fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/key-command/age-kms")
}

impl KeyCommand {
    /// A new age identity and the switch set to `ok`.
    pub fn new() -> KeyCommand {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = dir.path().join("identity.txt");
        let made = Command::new("age-keygen")
            .arg("-o")
            .arg(&identity)
            .output()
            .expect("age-keygen");
        assert!(made.status.success(), "age-keygen failed");
        let recipient = Command::new("age-keygen")
            .arg("-y")
            .arg(&identity)
            .output()
            .expect("age-keygen -y");
        std::fs::write(dir.path().join("recipient"), &recipient.stdout).unwrap();
        let script = dir.path().join("kms");
        let text = format!(
            r#"#!/usr/bin/env bash
dir={dir}
if [ -n "${{TBS_MASTER_KEY:-}}" ]; then echo "TBS_MASTER_KEY leaked to the key command" >&2; exit 9; fi
n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/calls"
mode=$(cat "$dir/mode")
case $mode in
ok) exec {example} "$(cat "$dir/recipient")" "$dir/identity.txt" "$@" ;;
fail) echo "kms: access denied for key k1" >&2; exit 1 ;;
garbage) echo 'not base64 %%%' ;;
empty) ;;
echo) cat >&2; exit 3 ;;
hang) echo $$ > "$dir/pid"; sleep 600 ;;
die-at-*) if [ $n -ge ${{mode#die-at-}} ]; then kill -9 $$; fi
    exec {example} "$(cat "$dir/recipient")" "$dir/identity.txt" "$@" ;;
esac
"#,
            dir = dir.path().display(),
            example = example().display()
        );
        std::fs::write(&script, text).unwrap();
        let chmod = Command::new("chmod").arg("+x").arg(&script).status();
        assert!(chmod.unwrap().success());
        let command = KeyCommand { dir, script };
        command.set_mode("ok");
        command
    }

    /// Switches the program: `ok`, `fail`, `garbage`, `empty`, `echo`, `hang`, `die-at-N`
    /// (killed by SIGKILL from its N-th call on); resets the call count.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).unwrap();
        let _ = std::fs::remove_file(self.dir.path().join("calls"));
    }

    /// The provider spec naming this program.
    pub fn spec(&self) -> String {
        format!("command:{}", self.script.display())
    }

    /// The process id the `hang` mode wrote.
    pub fn hung_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }
}
