"""One way to tell the user what is happening."""


def log(message: str) -> None:
    print(f"[ragdistill] {message}", flush=True)
