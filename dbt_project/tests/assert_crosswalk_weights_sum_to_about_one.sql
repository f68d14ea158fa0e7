-- Area weighting conserves counts: each 2010 tract's weights sum to 1, less only the sliver the 2020 tracts do
-- not cover (boundary redrawing along rivers and the county line; at most 0.6 % on the real tracts).
select
    tract_geoid_2010,
    sum(area_weight) as total_weight
from {{ ref('int_tracts__crosswalk_2010_2020') }}
group by tract_geoid_2010
having sum(area_weight) not between 0.98 and 1.000001
