//! docker_auth sections authd does not implement (they need a service that cannot be tested
//! offline here): each is refused while parsing, so the error carries its line, with a
//! sentence on what to use instead.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A section that is refused with `S`'s message whatever it holds.
#[derive(Debug)]
pub struct Refused<S>(PhantomData<S>);

/// What to say about one refused section.
pub trait Section {
    /// The whole message, starting with the section's name.
    const MESSAGE: &'static str;
}

impl<'de, S: Section> Deserialize<'de> for Refused<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Refusing from inside the parser's own call makes it add the section's position.
        d.deserialize_any(Refuse(S::MESSAGE))
            .map(|()| Refused(PhantomData))
    }
}

struct Refuse(&'static str);

impl<'de> Visitor<'de> for Refuse {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(self.0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(self.0))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(self.0))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(self.0))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(self.0))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(self.0))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(self.0))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(self.0))
    }
}

macro_rules! sections {
    ($($name:ident: $message:literal,)*) => {$(
        #[doc = $message]
        #[derive(Debug)]
        pub enum $name {}
        impl Section for $name {
            const MESSAGE: &'static str = $message;
        }
    )*};
}

sections! {
    GoogleAuth: "google_auth is not supported by authd: use ext_auth with a program that asks Google, or users/htpasswd",
    GithubAuth: "github_auth is not supported by authd: use ext_auth with a program that asks GitHub, or users/htpasswd",
    OidcAuth: "oidc_auth is not supported by authd: use ext_auth with a program that asks the OIDC provider, or users/htpasswd",
    GitlabAuth: "gitlab_auth is not supported by authd: use ext_auth with a program that asks GitLab, or users/htpasswd",
    MongoAuth: "mongo_auth is not supported by authd: move the users to htpasswd, or use ext_auth with a program that asks MongoDB",
    XormAuth: "xorm_auth is not supported by authd: move the users to htpasswd, or use ext_auth with a program that asks the database",
    PluginAuthn: "plugin_authn is not supported by authd: Go plugins cannot be loaded; use ext_auth with a program",
    AclMongo: "acl_mongo is not supported by authd: write the rules in acl, or use ext_authz with a program that asks MongoDB",
    AclXorm: "acl_xorm is not supported by authd: write the rules in acl, or use ext_authz with a program that asks the database",
    CasbinAuthz: "casbin_authz is not supported by authd: write the rules in acl, or use ext_authz with a program that runs Casbin",
    PluginAuthz: "plugin_authz is not supported by authd: Go plugins cannot be loaded; use ext_authz with a program",
}
