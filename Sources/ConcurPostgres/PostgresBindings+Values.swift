import PostgresNIO

extension PostgresBindings {
    /// Bindings of `values`, in order ($1, $2, ...), for statements built with
    /// `PostgresQuery(unsafeSQL:binds:)` (those that splice in the schema's name).
    static func of(_ values: any PostgresDynamicTypeEncodable...) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }
}
