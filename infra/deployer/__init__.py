"""Deploying template.yml to Function Compute through aliyun-fc2: package, plan, apply."""
