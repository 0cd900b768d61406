"""The local cloud, for demos and tests: an OSS-compatible server (`oss`); Function Compute running
template.yml's functions with their OSS, timer and EventBridge triggers, and FC's HTTP API (`fc`); RAM
policies and roles, which both enforce (`ram`); and the clock they share, which can be set ahead (`clock`)."""
