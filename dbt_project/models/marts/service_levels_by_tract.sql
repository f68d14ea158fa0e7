-- Service levels by request type x 2020 census tract x month: the measures of service_levels, by tract.
{{ service_levels_by('"TractGeoid"') }}
