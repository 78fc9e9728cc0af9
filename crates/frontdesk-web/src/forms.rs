//! Reading urlencoded form bodies. Every field must decode to UTF-8: decoding
//! lossily would store U+FFFD in place of what was sent, so a body that does
//! not decode is refused with a 400 and changes nothing (as the JSON API does).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::WebError;

/// The refusal of a body whose percent-decoded bytes are not UTF-8.
pub fn check_utf8(raw: &[u8]) -> Result<(), WebError> {
    // Separators (`&`, `=`) are ASCII, which never occurs inside a multi-byte
    // sequence, so the whole body decodes exactly when each name and value does.
    percent_encoding::percent_decode(raw)
        .decode_utf8()
        .map(drop)
        .map_err(|_| {
            WebError::bad_request("The form could not be read: it is not valid UTF-8 text.")
        })
}

/// `web::Form` with the UTF-8 rule: an urlencoded body deserialized into `T`.
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = WebError;
    type Future = LocalBoxFuture<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let urlencoded = req
            .content_type()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded");
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let unreadable =
                |why: String| WebError::bad_request(format!("The form could not be read: {why}"));
            let answer = async {
                if !urlencoded {
                    return Err(unreadable(
                        "send it as application/x-www-form-urlencoded.".into(),
                    ));
                }
                let body = body.await.map_err(|e| unreadable(e.to_string()))?;
                check_utf8(&body)?;
                serde_urlencoded::from_bytes(&body)
                    .map(Form)
                    .map_err(|e| unreadable(e.to_string()))
            };
            answer.await.map_err(|e| e.for_request(&req))
        })
    }
}
