"""A small catalog shared by the catalog engine's unit tests."""

from __future__ import annotations

from services.core.catalog import Product

ROWS = [
    ("D1", "Voltra 20V Cordless Drill/Driver Kit", "Tools > Drills", "Voltra"),
    ("D2", "Torqwell 18V Cordless Drill with Battery", "Tools > Drills", "Torqwell"),
    ("D3", "Voltra Cordless Hammer Drill", "Tools > Drills", "Voltra"),
    ("D4", "Torqwell Corded Drill 7.5 Amp", "Tools > Drills", "Torqwell"),
    ("D5", "Voltra Cordless Impact Driver", "Tools > Drivers", "Voltra"),
    ("P1", "Velvet Throw Pillow, Turquoise", "Decor > Pillows", "Halvard"),
    ("P2", "Cotton Throw Pillow, Turquoise", "Decor > Pillows", "Loomhaven"),
    ("P3", "Linen Throw Pillow, Gray", "Decor > Pillows", "Loomhaven"),
    ("T1", "Wooden Coffee Table", "Furniture > Tables", ""),
    ("T2", "Glass Coffee Table", "Furniture > Tables", ""),
    ("T3", "Oak Side Table", "Furniture > Tables", ""),
    ("K1", "Stainless Steel Kitchen Faucet", "Kitchen > Faucets", "Aquavell"),
    ("K2", "Brushed Nickel Kitchen Faucet", "Kitchen > Faucets", "Aquavell"),
]
PRODUCTS = [Product(id=i, title=t, category=c, brand=b) for i, t, c, b in ROWS]
CSV = "id,title,category,brand\n" + "".join(f'{i},"{t}",{c},{b}\n' for i, t, c, b in ROWS)
DRILL_TITLES = (ROWS[0][1], ROWS[1][1], ROWS[2][1])
