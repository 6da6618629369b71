//! CLIENT SETNAME | GETNAME | ID | SETINFO | LIST.

use super::{bulk, err, int, nil, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"setname", 3) => {
            if args[2].iter().any(|b| *b <= b' ' || *b > b'~') {
                return err("Client names cannot contain spaces, newlines or special characters.");
            }
            ctx.session.name = (!args[2].is_empty()).then(|| args[2].clone());
            ok()
        }
        (b"getname", 2) => ctx.session.name.clone().map_or_else(nil, bulk),
        (b"id", 2) => int(ctx.session.id as i64),
        (b"setinfo", 4) => ok(),
        (b"list", 2) => {
            let name = ctx.session.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            bulk(Bytes::from(format!("id={} name={} db=0\n", ctx.session.id, name)))
        }
        _ => err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}
