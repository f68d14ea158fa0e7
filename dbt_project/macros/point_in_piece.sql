{#-
    The ST_Contains test against subdivided boundary pieces that gives exactly the answer of ST_Contains
    against the whole boundary.

    A point strictly inside a piece is inside its boundary. A point on the edge of a piece is either on the
    boundary's own edge (not contained, as with the whole polygon) or on a cut line that ST_Subdivide drew
    through the interior (contained by the whole polygon, but by neither piece): only for those few points is
    the whole boundary consulted.
-#}
{% macro point_in_piece(piece, point, boundaries) %}
    st_intersects({{ piece }}.geom, {{ point }})
    and (
        st_contains({{ piece }}.geom, {{ point }})
        or exists (
            select 1
            from {{ boundaries }} as whole_boundary
            where
                whole_boundary.boundary_type = {{ piece }}.boundary_type
                and whole_boundary.boundary_id = {{ piece }}.boundary_id
                and st_contains(whole_boundary.geom, {{ point }})
        )
    )
{%- endmacro %}
