//! Stamps the binary with the commit it was built from (`tiercache --version`, the startup
//! line, `tiercache_build_info`, `INFO server`): `GIT_COMMIT` when set (the image build, whose
//! context leaves `.git` out), else `git rev-parse`, else "unknown".

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let from_env = std::env::var("GIT_COMMIT").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let from_git = || {
        let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !commit.is_empty()).then_some(commit)
    };
    let commit = from_env.or_else(from_git).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TIERCACHE_COMMIT={commit}");
}
