//! Serving an attachment's bytes: streamed from its blob, one `Range` per request (parsed by
//! [`crate::files::range`]), revalidated by its `ETag`, and always as a download
//! (`Content-Disposition` from [`crate::files::names`], `nosniff`, a sandboxing CSP, active
//! types as `application/octet-stream`).

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::api::conditional::none_match_hits;
use crate::api::error::{ApiError, ApiResult, ErrorCode, PROBLEM_JSON, Problem};
use crate::domain::attachment::Attachment;
use crate::files::range::{ByteRange, content_range, parse_range, unsatisfied_range};
use crate::files::{names, sniff};

/// How much of a file one read of a download takes (larger reads, fewer wake-ups).
const DOWNLOAD_CHUNK_BYTES: usize = 256 << 10;

/// The conditional and range headers of a download request.
pub(super) struct Conditions<'a> {
    /// `Range`.
    pub range: Option<&'a str>,
    /// `If-Range`: honour `Range` only while the content has this `ETag`.
    pub if_range: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
}

/// Answers a download of `attachment`, whose bytes are at `path`: 304 when the client has
/// them, else the part of them `conditions` ask for.
pub(super) async fn serve(
    attachment: &Attachment,
    path: &std::path::Path,
    conditions: Conditions<'_>,
) -> ApiResult<Download> {
    let a = attachment;
    let tag = format!("\"{}\"", a.sha256_hex());
    if none_match_hits(conditions.if_none_match, &tag) {
        let mut response = Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, tag)
            .finish();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        return Ok(Download(response));
    }
    let range = match conditions.if_range {
        Some(validator) if validator.trim() != tag => ByteRange::Full,
        _ => parse_range(conditions.range, a.size),
    };
    let headers = vec![
        (
            header::CONTENT_TYPE,
            sniff::served_type(&a.content_type).to_string(),
        ),
        (
            header::CONTENT_DISPOSITION,
            names::content_disposition(&a.filename),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox".to_string(),
        ),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::CACHE_CONTROL, "private, no-cache".to_string()),
        (header::ETAG, tag),
    ];
    Ok(Download(stream(path, range, a.size, headers).await?))
}

/// A download: the bytes (200), a range of them (206), 304, or 416. Built by hand because its
/// `Content-Type` is the file's.
pub struct Download(Response);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        self.0
    }
}

fn header_meta(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

fn content_headers() -> Vec<MetaHeader> {
    vec![
        header_meta("ETag", "The SHA-256 of the content, quoted."),
        header_meta(
            "Content-Disposition",
            "`attachment` with the file name (RFC 6266 `filename*`).",
        ),
        header_meta("X-Content-Type-Options", "`nosniff`."),
        header_meta("Accept-Ranges", "`bytes`."),
    ]
}

/// The file's bytes, as any type a download can be served as.
fn binary() -> Vec<MetaMediaType> {
    sniff::served_types()
        .map(|content_type| MetaMediaType {
            content_type,
            schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                "string", "binary",
            ))),
        })
        .collect()
}

impl ApiResponse for Download {
    fn meta() -> MetaResponses {
        let mut partial = content_headers();
        partial.push(header_meta("Content-Range", "`bytes first-last/size`."));
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The whole file. `Content-Type` is the sniffed type, or `application/octet-stream` for active types.",
                    status: Some(200),
                    status_range: None,
                    content: binary(),
                    headers: content_headers(),
                },
                MetaResponse {
                    description: "The requested byte range (one range per request).",
                    status: Some(206),
                    status_range: None,
                    content: binary(),
                    headers: partial,
                },
                MetaResponse {
                    description: "Unchanged: `If-None-Match` names the content's `ETag`.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![header_meta("ETag", "The SHA-256 of the content, quoted.")],
                },
                MetaResponse {
                    description: "The range starts past the end (`range_not_satisfiable`); `Content-Range: bytes */size`.",
                    status: Some(416),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: <Problem as Type>::schema_ref(),
                    }],
                    headers: vec![header_meta("Content-Range", "`bytes */size`.")],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as Type>::register(registry);
    }
}

/// Opens the blob and answers with the part of it `range` asks for.
async fn stream(
    path: &std::path::Path,
    range: ByteRange,
    size: u64,
    headers: Vec<(header::HeaderName, String)>,
) -> ApiResult<Response> {
    let mut builder = Response::builder();
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let (status, start, length) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, content_range(start, end, size));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            let problem = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                format!("the file has {size} bytes; the range starts past its end"),
            );
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, unsatisfied_range(size))
                .content_type(PROBLEM_JSON)
                .body(problem.to_json_string()));
        }
    };
    let missing = |e: std::io::Error| -> ApiError {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Deleted between the permission check and here.
            crate::service::Error::NotFound("attachment").into()
        } else {
            crate::service::Error::Storage(format!("blob {}: {e}", path.display())).into()
        }
    };
    let mut file = tokio::fs::File::open(path).await.map_err(missing)?;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(missing)?;
    }
    Ok(builder
        .status(status)
        .header(header::CONTENT_LENGTH, length)
        .body(Body::from_bytes_stream(ReaderStream::with_capacity(
            file.take(length),
            DOWNLOAD_CHUNK_BYTES,
        ))))
}
