"""The ``farz`` command line; the product's code lives in vision/, device/, training/ and server/."""

__all__: list[str] = []
