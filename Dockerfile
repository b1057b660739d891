# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY pkg ./pkg
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /promgate ./cmd/promgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /promgate /promgate
COPY config/promgate.yaml /etc/promgate/promgate.yaml
USER 65532:65532
ENTRYPOINT ["/promgate"]
