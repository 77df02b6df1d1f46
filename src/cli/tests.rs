//! SOURCE and DEST from the environment or the config file, and the command line's
//! precedence.

use super::*;
use std::ffi::OsString;

fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, clap::Error> {
    let env: Vec<(String, OsString)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    parse_with_env(args.iter().map(OsString::from).collect(), &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

fn job(cli: Cli) -> JobArgs {
    match cli.command {
        Command::Single(args) => args,
        other => panic!("{other:?}"),
    }
}

const BOTH: &[(&str, &str)] = &[
    ("PGSYNC_SOURCE", "host=src dbname=shop"),
    ("PGSYNC_DEST", "postgres://w@dst/shop"),
];

#[test]
fn source_and_dest_come_from_the_environment_when_left_out() {
    let args = job(parse(
        &["pgsync", "single", "-c", "500", "transactions", "writer"],
        BOTH,
    )
    .unwrap());
    assert_eq!(args.source, "host=src dbname=shop");
    assert_eq!(args.dest, "postgres://w@dst/shop");
    assert_eq!(
        args.selection(),
        (vec!["transactions".to_string()], Some("writer".to_string()))
    );
    assert_eq!(args.chunksize, Some(500));
}

#[test]
fn the_command_line_wins_and_both_variables_are_needed() {
    let args = job(parse(&["pgsync", "single", "a", "b", "t"], BOTH).unwrap());
    assert_eq!((args.source.as_str(), args.dest.as_str()), ("a", "b"));
    let one = parse(&["pgsync", "single", "t"], &BOTH[..1]).unwrap_err();
    assert_eq!(one.kind(), clap::error::ErrorKind::MissingRequiredArgument);
}

#[test]
fn source_and_dest_come_from_the_config_file_after_the_environment() {
    let path = std::env::temp_dir().join(format!("pgsync-cli-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "source = \"host=a dbname=s\"\ndest = \"host=b dbname=d\"\njobs = 2\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let args = job(parse(&["pgsync", "single", "--config", config, "t"], &[]).unwrap());
    assert_eq!(
        (args.source.as_str(), args.dest.as_str()),
        ("host=a dbname=s", "host=b dbname=d")
    );
    assert_eq!(args.jobs, 2);
    // The environment wins over the file, the command line over both.
    let args = job(parse(
        &["pgsync", "single", "t"],
        &[BOTH[0], BOTH[1], ("PGSYNC_CONFIG", config)],
    )
    .unwrap());
    assert_eq!(args.source, "host=src dbname=shop");
    let args = job(parse(
        &[
            "pgsync",
            "single",
            &format!("--config={config}"),
            "x",
            "y",
            "t",
        ],
        &[],
    )
    .unwrap());
    assert_eq!((args.source.as_str(), args.dest.as_str()), ("x", "y"));
    std::fs::remove_file(&path).unwrap();
}
