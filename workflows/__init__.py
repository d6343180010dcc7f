"""The platform's Argo workflows, defined with Hera and compiled to YAML by `mlops workflows compile`.

One module per workflow exposes `build(env, repo)` and the object it builds
(`train_and_promote`, `retrain_cron`, `canary_analysis`, `canary_analysis_cron`); the other modules are what
they share: environments, parameters, images, the trainer's command line, the step functions.
"""
