"""The support desk's pure rules: session status transitions and the routing policy."""
