//! The status page as data, in Atlassian Statuspage's shapes: [`view`]
//! reads the page, its components, incidents and maintenance windows from
//! the configuration and the store into view models; [`api`] turns them
//! into the `/api/v2` documents and the webhook bodies subscribers get. The
//! web layer renders and serves them; subscriber mail and webhooks send
//! them.

pub mod api;
pub mod view;
