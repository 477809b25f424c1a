# Build: docker build -t cloudcarbon_exporter .
# Run:   docker run -p 9874:9874 cloudcarbon_exporter --demo
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /cloudcarbon_exporter .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /cloudcarbon_exporter /bin/cloudcarbon_exporter
WORKDIR /var/lib/cloudcarbon_exporter
EXPOSE 9874
USER nonroot
ENTRYPOINT ["/bin/cloudcarbon_exporter"]
CMD ["--config.file=/etc/cloudcarbon_exporter/config.yml", "--state.file=/var/lib/cloudcarbon_exporter/state.json"]
