//! Sans-IO SIP/SDP protocol crate (skeleton).

mod addr;
mod builder;
pub mod dialog;
mod error;
mod framer;
mod head;
mod header;
mod ids;
mod limits;
mod lines;
mod message;
mod method;
mod params;
mod scan;
pub mod sdp;
pub mod timer;
pub mod transaction;
mod typed;
mod uri;
mod via;

pub use addr::{Contact, NameAddr};
pub use builder::{BuildError, MessageBuilder};
pub use error::ParseError;
pub use framer::{Frame, Framer};
pub use header::{Header, HeaderName};
pub use ids::{new_branch, new_call_id, new_call_id_with_prefix, new_tag, new_tag_with_prefix};
pub use limits::Limits;
pub use message::{Message, RequestLine, StartLine, StatusLine, SIP_VERSION};
pub use method::Method;
pub use params::{Param, ParamIter, Params};
pub use typed::{parse_content_length, parse_max_forwards, CSeq, ContentType, Privacy, Reason};
pub use uri::{Host, Scheme, Uri};
pub use via::{Via, BRANCH_MAGIC_COOKIE};
