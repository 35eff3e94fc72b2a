"""Local tooling for humanos-bridge: the CLI, the Humanos sandbox, the local stack.

Nothing in here is shipped in the Lambda layer, and the Lambda functions never import it.
"""
