"""Deployment tooling: the container image's runtime lock, a renderer of the plain kustomize subset our manifests use,
schema validation of the rendered documents, the security policy every workload must meet, the Dockerfile checker,
and the dev overlay's Secret generator. Manifests themselves live in ``deploy/k8s`` (see ``deploy/README.md``)."""
