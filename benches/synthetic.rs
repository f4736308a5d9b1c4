//! A synthetic export file of realistic text, for measuring `tasker import`, the first start
//! and the offline commands at scale (issue 18):
//!
//!     cargo bench --bench synthetic -- --tasks 1000000 --out /tmp/tasks.json [--seed 18]
//!
//! (`cargo bench --profile dev ...` builds it without the release profile; the file is the
//! same.) The text is Zipf-distributed (exponent 1) over a vocabulary of 30,000 made-up words,
//! frequent words shorter; titles have 3-8 words, descriptions 10-80; every tenth task has a
//! comment of 5-40 words. 200 accounts in 20 teams of 10 (the first of each its owner;
//! account 1 is also a member of every other team), 5 projects per team (100 in all); each task is in a project, created by a member of its team
//! and assigned to 0-2 of them. Ids are UUIDv7 built from the creation times and the seeded
//! generator, so the same arguments always give the same file, byte for byte. Written as a
//! stream: any size fits in memory.

use std::path::PathBuf;

#[path = "common/synthetic.rs"]
mod synthetic;
#[path = "common/zipf.rs"]
#[allow(dead_code)]
mod zipf;

/// The generator's arguments.
struct Args {
    tasks: u64,
    out: PathBuf,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        tasks: 200_000,
        out: PathBuf::new(),
        seed: 18,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--tasks" => args.tasks = value()?.parse().map_err(|e| format!("--tasks: {e}"))?,
            "--out" => args.out = PathBuf::from(value()?),
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            // What `cargo bench` passes to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.out.as_os_str().is_empty() {
        return Err("--out FILE is required".into());
    }
    Ok(args)
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("synthetic: {e}\nusage: synthetic --tasks N --out FILE [--seed S]");
            std::process::exit(2);
        }
    };
    let started = std::time::Instant::now();
    if let Err(e) = synthetic::write(&args.out, args.tasks, args.seed) {
        eprintln!("synthetic: {e}");
        std::process::exit(1);
    }
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    println!(
        "wrote {} tasks to {} ({bytes} bytes, {:.0} bytes per task) in {:.1} s",
        args.tasks,
        args.out.display(),
        bytes as f64 / args.tasks.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
}
