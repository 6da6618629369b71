//! CLIENT SETNAME | GETNAME | ID | SETINFO | LIST.

use super::{bulk, err, int, nil, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) enum Client {
    Setname(Bytes),
    Getname,
    Id,
    Setinfo,
    List,
}

impl Client {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let sub = args[1].to_ascii_lowercase();
        Ok(match (sub.as_slice(), args.len()) {
            (b"setname", 3) => {
                if args[2].iter().any(|b| *b <= b' ' || *b > b'~') {
                    return Err(err("Client names cannot contain spaces, newlines or special characters."));
                }
                Client::Setname(args[2].clone())
            }
            (b"getname", 2) => Client::Getname,
            (b"id", 2) => Client::Id,
            (b"setinfo", 4) => Client::Setinfo,
            (b"list", 2) => Client::List,
            _ => {
                return Err(err(format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(&args[1])
                )))
            }
        })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match self {
            Client::Setname(name) => {
                ctx.session.name = (!name.is_empty()).then_some(name);
                ok()
            }
            Client::Getname => ctx.session.name.clone().map_or_else(nil, bulk),
            Client::Id => int(ctx.session.id as i64),
            Client::Setinfo => ok(),
            Client::List => {
                let name = ctx.session.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                bulk(Bytes::from(format!("id={} name={} db=0\n", ctx.session.id, name)))
            }
        }
    }
}
