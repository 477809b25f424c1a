# Build: docker build -t cloudcarbon_exporter .
# Run:   docker run -p 9874:9874 cloudcarbon_exporter --demo
#        docker run -p 9874:9874 -v cloudcarbon-state:/var/lib/cloudcarbon_exporter \
#          -v $PWD/cloudcarbon.yml:/etc/cloudcarbon_exporter/config.yml:ro cloudcarbon_exporter
# Base images as build arguments, so that a release build pins them by
# digest: --build-arg GO_IMAGE=golang:1.26@sha256:... and
# --build-arg BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:...
ARG GO_IMAGE=golang:1.26
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# The build context holds no .git (.dockerignore): pass the revision in,
# e.g. --build-arg REVISION=$(git rev-parse HEAD).
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build BINARY=/cloudcarbon_exporter GOFLAGS=-trimpath CGO_ENABLED=0 EXTRA_LDFLAGS='-s -w' REVISION=$REVISION BRANCH=unknown \
 && mkdir -p /state

FROM ${BASE_IMAGE}
COPY --from=build /cloudcarbon_exporter /bin/cloudcarbon_exporter
# The state directory belongs to the nonroot user (65532), so that the
# exporter can write its state file there, in a volume or not.
COPY --from=build --chown=65532:65532 /state /var/lib/cloudcarbon_exporter
VOLUME /var/lib/cloudcarbon_exporter
WORKDIR /var/lib/cloudcarbon_exporter
EXPOSE 9874
USER nonroot
ENTRYPOINT ["/bin/cloudcarbon_exporter"]
CMD ["--config.file=/etc/cloudcarbon_exporter/config.yml", "--state.file=/var/lib/cloudcarbon_exporter/state.json"]
