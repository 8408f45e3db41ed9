//! Names the commit a binary was built from, for `kpulse --version`: a bug report then says
//! exactly what ran. Outside a git checkout (a crate tarball) the version says so.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let described = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // Tracked files changed since that commit: the binary is not exactly it.
            let modified = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if modified { format!("commit {commit}, modified") } else { format!("commit {commit}") }
        }
        None => "commit unknown: not built from a git checkout".to_string(),
    };
    println!("cargo:rustc-env=KPULSE_BUILD={described}");
    // A new commit moves HEAD or the branch it names; an edit makes the tree modified. Only paths
    // that exist: cargo takes a missing one (no packed-refs in a repository that never packed)
    // as changed on every build, and rebuilds the crate each time.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs", ".git/index", "src"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
