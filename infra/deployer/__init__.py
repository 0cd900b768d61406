"""Deploying template.yml to Function Compute and OSS: the dependencies a function's package carries
(`package`), what must change (`plan`), the triggers that would receive the functions' own writes
(`recursion`, from the calls their code makes: `calls`), and applying it through aliyun-fc2 and oss2
(`apply`)."""
