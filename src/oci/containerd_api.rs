//! The calls of containerd's gRPC API that worldfit makes, written out as
//! prost messages and a tonic client: `Images.Get` (an image's target
//! descriptor), `Content.Read` (a blob, streamed) and `Containers.Get` (a
//! container's image and labels, which a shim reads to know what to run).
//!
//! Why not generated code: the `containerd-client` crate generates all of
//! containerd's API at build time with `protoc`, which a `cargo install`
//! machine seldom has, so containerd sources had to be a cargo feature.
//! These messages declare only the fields worldfit reads, with the field
//! numbers of containerd's `api/services/images/v1/images.proto`,
//! `api/services/content/v1/content.proto`,
//! `api/services/containers/v1/containers.proto` and `api/types/descriptor.proto`
//! (stable since containerd 1.0); protobuf skips the fields they leave out.

use tonic::client::Grpc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

/// `containerd.types.Descriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Descriptor {
    #[prost(string, tag = "1")]
    pub media_type: String,
    #[prost(string, tag = "2")]
    pub digest: String,
    #[prost(int64, tag = "3")]
    pub size: i64,
}

/// `containerd.services.images.v1.Image`: its name and target.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "3")]
    pub target: Option<Descriptor>,
}

/// `containerd.services.images.v1.GetImageRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetImageRequest {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `containerd.services.images.v1.GetImageResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetImageResponse {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
}

/// `containerd.services.content.v1.ReadContentRequest`: `size` 0 reads to
/// the end.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadContentRequest {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(int64, tag = "2")]
    pub offset: i64,
    #[prost(int64, tag = "3")]
    pub size: i64,
}

/// `containerd.services.content.v1.ReadContentResponse`: one chunk.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadContentResponse {
    #[prost(int64, tag = "1")]
    pub offset: i64,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// `containerd.services.containers.v1.Container`: its id, labels and image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[prost(string, tag = "3")]
    pub image: String,
}

/// `containerd.services.containers.v1.GetContainerRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetContainerRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `containerd.services.containers.v1.GetContainerResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetContainerResponse {
    #[prost(message, optional, tag = "1")]
    pub container: Option<Container>,
}

/// A client of containerd's `Images`, `Content` and `Containers` services
/// on one channel.
pub struct Client {
    grpc: Grpc<Channel>,
}

impl Client {
    pub fn new(channel: Channel) -> Client {
        Client {
            grpc: Grpc::new(channel),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("containerd's channel is not ready: {e}")))
    }

    /// `/containerd.services.images.v1.Images/Get`.
    pub async fn get_image(
        &mut self,
        request: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        self.ready().await?;
        let path =
            http::uri::PathAndQuery::from_static("/containerd.services.images.v1.Images/Get");
        self.grpc
            .unary(request, path, tonic_prost::ProstCodec::default())
            .await
    }

    /// `/containerd.services.containers.v1.Containers/Get`.
    pub async fn get_container(
        &mut self,
        request: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static(
            "/containerd.services.containers.v1.Containers/Get",
        );
        self.grpc
            .unary(request, path, tonic_prost::ProstCodec::default())
            .await
    }

    /// `/containerd.services.content.v1.Content/Read`, a server stream.
    pub async fn read_content(
        &mut self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Streaming<ReadContentResponse>>, Status> {
        self.ready().await?;
        let path =
            http::uri::PathAndQuery::from_static("/containerd.services.content.v1.Content/Read");
        self.grpc
            .server_streaming(request, path, tonic_prost::ProstCodec::default())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn fields_worldfit_skips_are_skipped() {
        // An Image as containerd encodes it: name, a label (2), the target
        // with an annotation (5), created_at (7).
        let mut bytes = Vec::new();
        let target = {
            let mut t = Vec::new();
            prost::encoding::string::encode(
                1,
                &"application/vnd.oci.image.index.v1+json".into(),
                &mut t,
            );
            prost::encoding::string::encode(2, &"sha256:ab".into(), &mut t);
            prost::encoding::int64::encode(3, &512, &mut t);
            prost::encoding::bytes::encode(5, &b"\x0a\x01k\x12\x01v".to_vec(), &mut t);
            t
        };
        prost::encoding::string::encode(1, &"docker.io/library/app:1".into(), &mut bytes);
        prost::encoding::bytes::encode(2, &b"\x0a\x01a\x12\x01b".to_vec(), &mut bytes);
        prost::encoding::bytes::encode(3, &target, &mut bytes);
        prost::encoding::bytes::encode(7, &b"\x08\x01".to_vec(), &mut bytes);
        let image = Image::decode(bytes.as_slice()).unwrap();
        assert_eq!(image.name, "docker.io/library/app:1");
        let target = image.target.unwrap();
        assert_eq!(
            (
                target.media_type.as_str(),
                target.digest.as_str(),
                target.size
            ),
            ("application/vnd.oci.image.index.v1+json", "sha256:ab", 512)
        );
    }
}
