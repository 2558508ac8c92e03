"""The API's event use cases, which know no HTTP: the read model of lists (`read_model`,
`upkeep`), the writes (`writes`, `write_steps`, `splits`, `targets`), the checking of
their input (`changes_input`, `changes_applied`, `times_input`, `props_input`,
`type_fields`) and the view of an event (`views`). They raise the domain's errors
(`calsync.domain.errors`); `calsync.web.errors` maps them to statuses (decision HE2)."""
